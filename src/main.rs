//! The `gitops-render` binary: everything is in the library; this only hands over.

fn main() {
    std::process::exit(gitops_render::cli::main());
}
