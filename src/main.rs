//! The `gitops-render` binary: everything is in the library; this only hands over.

#[global_allocator]
static GLOBAL: gitops_render::Allocator = gitops_render::ALLOCATOR;

fn main() {
    std::process::exit(gitops_render::cli::main());
}
