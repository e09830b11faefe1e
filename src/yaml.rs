//! YAML in, YAML out, with every node's line and column kept.
//!
//! Values files are written by people and manifests come from anywhere, so reading them
//! is where strictness starts. We build our own tree from `saphyr-parser`'s events
//! instead of deserialising with a serde YAML crate: `serde_yaml` is archived,
//! `serde_yml` carries a security advisory, and neither keeps positions or lets us
//! refuse duplicate keys and alias bombs. saphyr-parser is the maintained YAML 1.2
//! parser of the yaml-rust lineage; it gives spans for every event and leaves anchors,
//! aliases and scalar typing to us, which is exactly what we want:
//!
//! - duplicate keys are an error at the second key, never "last one wins";
//! - aliases are expanded against a node budget, so a billion-laughs file stops early;
//! - scalars keep their source text and quoting, so the caller decides their type
//!   (a values file types them by its schema: `yes`, `0755` and `1e3` stay strings
//!   where a string is expected);
//! - documents nest only so deep, so nothing downstream can overflow the stack.
//!
//! The writer at the bottom emits canonical block YAML from JSON values: keys sorted,
//! strings quoted whenever YAML 1.1 or 1.2 could read them as anything but a string.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A position in a source file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    fn from_span(span: &Span) -> Self {
        Pos {
            line: span.start.line() as u32,
            column: span.start.col() as u32 + 1,
        }
    }
}

/// How a scalar was written: plain scalars are typed by the reader, quoted and block
/// scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar {
        text: String,
        style: Style,
        /// An explicit core tag such as `!!str`, without the `!!`.
        tag: Option<String>,
    },
    Sequence(Vec<Node>),
    /// Keys in source order, each with its own position; never two equal keys.
    Mapping(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub text: String,
    pub pos: Pos,
}

/// One document of a stream, with the line its content starts on.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Node,
}

/// What a reader will put up with. Values files get tight limits, manifests looser ones.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes after alias expansion, in all documents together.
    pub max_nodes: usize,
    pub max_depth: usize,
    pub allow_aliases: bool,
    /// Whether to read as kubectl and Helm read manifests: `<<: *base` merges a mapping
    /// into the one it sits in (YAML 1.1's merge key, which every Kubernetes tool
    /// honours), and the indentation go-yaml v2 does not check is forgiven
    /// ([`parse_documents`]). Values files are this product's own format, strict YAML
    /// 1.2: there `<<` is an unknown field, like any other.
    pub as_kubectl: bool,
}

impl Limits {
    pub const VALUES: Limits = Limits {
        max_nodes: 5_000,
        max_depth: 16,
        allow_aliases: true,
        as_kubectl: false,
    };
    pub const MANIFESTS: Limits = Limits {
        max_nodes: 2_000_000,
        max_depth: 64,
        allow_aliases: true,
        as_kubectl: true,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    DuplicateKey,
    AliasBudget,
    TooDeep,
    ComplexKey,
    Tag,
    UndefinedAlias,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub pos: Pos,
}

impl Error {
    fn new(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            pos,
        }
    }

    /// The rule id findings carry for this error.
    pub fn rule(&self) -> &'static str {
        match self.kind {
            ErrorKind::Syntax => "yaml-syntax",
            ErrorKind::DuplicateKey => "yaml-duplicate-key",
            ErrorKind::AliasBudget => "yaml-alias-budget",
            ErrorKind::TooDeep => "yaml-too-deep",
            ErrorKind::ComplexKey => "yaml-complex-key",
            ErrorKind::Tag => "yaml-tag",
            ErrorKind::UndefinedAlias => "yaml-syntax",
        }
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        pending_key: Option<Key>,
        /// The keys of `entries` by text, once there are too many to scan.
        index: Option<HashMap<String, Pos>>,
        /// Entries brought in by `<<` merge keys, in order of precedence.
        merged: Vec<(Key, Node)>,
        /// Whether the pending key is a merge key.
        pending_merge: bool,
    },
}

/// Parse every document of a YAML stream.
pub fn parse_stream(source: &str, limits: Limits) -> Result<Vec<Document>, Error> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;

    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| {
            Error::new(
                ErrorKind::Syntax,
                Pos {
                    line: e.marker().line() as u32,
                    column: e.marker().col() as u32 + 1,
                },
                e.info().to_string(),
            )
        })?;
        let pos = Pos::from_span(&span);
        let finished: Node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                anchors.clear();
                continue;
            }
            Event::DocumentEnd => {
                let root = root.take().unwrap_or(Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text: String::new(),
                        style: Style::Plain,
                        tag: None,
                    },
                });
                docs.push(Document { root });
                continue;
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), pos, "seq")?;
                if stack.len() >= limits.max_depth {
                    return Err(Error::new(
                        ErrorKind::TooDeep,
                        pos,
                        format!("nested deeper than {} levels", limits.max_depth),
                    ));
                }
                stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), pos, "map")?;
                if stack.len() >= limits.max_depth {
                    return Err(Error::new(
                        ErrorKind::TooDeep,
                        pos,
                        format!("nested deeper than {} levels", limits.max_depth),
                    ));
                }
                stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    index: None,
                    merged: Vec::new(),
                    pending_merge: false,
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => {
                    let node = Node {
                        pos,
                        kind: NodeKind::Sequence(items),
                    };
                    remember(&mut anchors, anchor, &node);
                    node
                }
                _ => return Err(Error::new(ErrorKind::Syntax, pos, "unbalanced sequence")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    pos,
                    anchor,
                    mut entries,
                    merged,
                    ..
                }) => {
                    // Keys written in the mapping win over merged ones; among merged
                    // ones, the first source wins (YAML's merge key semantics).
                    if !merged.is_empty() {
                        let mut taken: std::collections::HashSet<String> =
                            entries.iter().map(|(k, _)| k.text.clone()).collect();
                        for (k, v) in merged {
                            if taken.insert(k.text.clone()) {
                                entries.push((k, v));
                            }
                        }
                    }
                    let node = Node {
                        pos,
                        kind: NodeKind::Mapping(entries),
                    };
                    remember(&mut anchors, anchor, &node);
                    node
                }
                _ => return Err(Error::new(ErrorKind::Syntax, pos, "unbalanced mapping")),
            },
            Event::Scalar(text, style, anchor, tag) => {
                nodes += 1;
                let node = scalar_node(text, style, tag.as_deref(), pos)?;
                remember(&mut anchors, anchor, &node);
                node
            }
            Event::Alias(id) => {
                if !limits.allow_aliases {
                    return Err(Error::new(
                        ErrorKind::AliasBudget,
                        pos,
                        "aliases are not allowed here",
                    ));
                }
                let target = anchors.get(&id).ok_or_else(|| {
                    Error::new(ErrorKind::UndefinedAlias, pos, "alias to an unknown anchor")
                })?;
                nodes += count_nodes(target, limits.max_nodes);
                if nodes > limits.max_nodes {
                    return Err(Error::new(
                        ErrorKind::AliasBudget,
                        pos,
                        format!(
                            "aliases expand to more than {} nodes; write the values out instead of repeating anchors",
                            limits.max_nodes
                        ),
                    ));
                }
                let mut copy = target.clone();
                copy.pos = pos;
                copy
            }
        };
        if nodes > limits.max_nodes {
            return Err(Error::new(
                ErrorKind::AliasBudget,
                pos,
                format!("more than {} nodes", limits.max_nodes),
            ));
        }
        // Hand the finished node to its parent, or make it the document's root.
        match stack.last_mut() {
            None => root = Some(finished),
            Some(Frame::Seq { items, .. }) => {
                nodes += 1;
                items.push(finished)
            }
            Some(Frame::Map {
                entries,
                pending_key,
                index,
                merged,
                pending_merge,
                ..
            }) => match pending_key.take() {
                None => {
                    if limits.as_kubectl
                        && matches!(&finished.kind, NodeKind::Scalar { text, style: Style::Plain, tag: None } if text == "<<")
                    {
                        *pending_merge = true;
                        *pending_key = Some(Key {
                            text: "<<".into(),
                            pos: finished.pos,
                        });
                        continue;
                    }
                    let pos = finished.pos;
                    let text = match finished.kind {
                        NodeKind::Scalar { text, .. } => text,
                        _ => {
                            return Err(Error::new(
                                ErrorKind::ComplexKey,
                                pos,
                                "mapping keys must be plain strings",
                            ))
                        }
                    };
                    if let Some(first) = first_key(entries, index, &text, pos) {
                        return Err(Error::new(
                            ErrorKind::DuplicateKey,
                            pos,
                            format!(
                                "duplicate key `{}` (first defined on line {}); YAML readers disagree on which one wins, so neither does here",
                                text, first.line
                            ),
                        ));
                    }
                    *pending_key = Some(Key { text, pos });
                }
                Some(_) if *pending_merge => {
                    *pending_merge = false;
                    merge_into(merged, finished)?;
                }
                Some(key) => {
                    nodes += 1;
                    entries.push((key, finished))
                }
            },
        }
    }
    Ok(docs)
}

/// Mappings with more keys than this get an index for the duplicate-key check; below
/// it, scanning the keys is cheaper than hashing and copying each one (most mappings of
/// a manifest have a handful of keys; a ConfigMap may have thousands).
const SCAN_KEYS: usize = 16;

/// Where `text` is already a key of the mapping being read, if it is; indexes the keys
/// once there are many, and records `text` (read at `pos`) in the index from then on.
fn first_key(
    entries: &[(Key, Node)],
    index: &mut Option<HashMap<String, Pos>>,
    text: &str,
    pos: Pos,
) -> Option<Pos> {
    if index.is_none() && entries.len() < SCAN_KEYS {
        return entries
            .iter()
            .find(|(k, _)| k.text == text)
            .map(|(k, _)| k.pos);
    }
    let index = index.get_or_insert_with(|| {
        entries
            .iter()
            .map(|(k, _)| (k.text.clone(), k.pos))
            .collect()
    });
    match index.get(text) {
        Some(first) => Some(*first),
        None => {
            // The key is not in `entries` yet (its value is still being read), so it
            // goes in here.
            index.insert(text.to_string(), pos);
            None
        }
    }
}

/// The entries a `<<` value brings: a mapping's, or those of each mapping of a list.
fn merge_into(merged: &mut Vec<(Key, Node)>, value: Node) -> Result<(), Error> {
    match value.kind {
        NodeKind::Mapping(entries) => merged.extend(entries),
        NodeKind::Sequence(items) => {
            for item in items {
                match item.kind {
                    NodeKind::Mapping(entries) => merged.extend(entries),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Syntax,
                            item.pos,
                            "a `<<` merge list may hold only mappings",
                        ))
                    }
                }
            }
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Syntax,
                value.pos,
                "the value of a `<<` merge key must be a mapping or a list of mappings",
            ))
        }
    }
    Ok(())
}

/// Every document of a stream. When the stream as a whole is not valid YAML, each
/// document (split at its `---` or `...` marker lines) is parsed on its own, so a syntax
/// error in one document of a Helm or Kustomize output costs that document only, and
/// the error keeps its line in the whole file.
pub fn parse_documents(source: &str, limits: Limits) -> Vec<Result<Document, Error>> {
    let first = match parse_stream(source, limits) {
        Ok(docs) => return docs.into_iter().map(Ok).collect(),
        Err(e) => e,
    };
    // Forgiven indentation is repaired once, in the smallest unit that has it: each
    // repair is a whole parse again.
    let chunks = split_documents(source);
    if chunks.len() <= 1 {
        return match read_again_as_kubectl(source, limits, first) {
            Ok(docs) => docs.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
    }
    let mut out = Vec::new();
    for (offset, chunk) in chunks {
        match parse_stream_as_kubectl(chunk, limits) {
            Ok(docs) => out.extend(docs.into_iter().map(|mut d| {
                shift(&mut d.root, offset);
                Ok(d)
            })),
            Err(mut e) => {
                e.pos.line += offset;
                out.push(Err(e));
            }
        }
    }
    out
}

/// [`parse_stream`], forgiving in manifests what kubectl's reader (go-yaml v2) forgives:
/// the indentation of a flow collection's lines (`args: [` ... `]` with the `]` under
/// `args`) and of a quoted scalar's continuation lines. YAML 1.2 requires them indented
/// past their key; released manifests (Tekton's controller, for one) are not. Such a
/// line is read again indented one space more, which changes no value (whitespace there
/// is not content) and keeps every line's number.
fn parse_stream_as_kubectl(source: &str, limits: Limits) -> Result<Vec<Document>, Error> {
    match parse_stream(source, limits) {
        Err(e) => read_again_as_kubectl(source, limits, e),
        done => done,
    }
}

/// The repairs of [`parse_stream_as_kubectl`] after `first` failed the plain reading.
fn read_again_as_kubectl(
    source: &str,
    limits: Limits,
    first: Error,
) -> Result<Vec<Document>, Error> {
    if !limits.as_kubectl {
        return Err(first);
    }
    let mut lines: Vec<String> = source.split_inclusive('\n').map(str::to_string).collect();
    let mut error = first.clone();
    for _ in 0..64 {
        let Some(line) = under_indented_line(&lines, &error) else {
            return Err(first);
        };
        lines[line].insert(0, ' ');
        match parse_stream(&lines.concat(), limits) {
            Err(e)
                if e.kind == ErrorKind::Syntax && e.message.starts_with("invalid indentation") =>
            {
                error = e
            }
            // Another error is the file's own, on a line it still has.
            done => return done,
        }
    }
    Err(first)
}

/// The 0-based line an indentation error is about, when it is one kubectl forgives.
fn under_indented_line(lines: &[String], e: &Error) -> Option<usize> {
    let at = (e.pos.line as usize).checked_sub(1)?;
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    match e.message.as_str() {
        "invalid indentation in flow construct" => Some(at),
        "invalid indentation" => {
            let text = lines.get(at)?.trim_start();
            (text.starts_with(']') || text.starts_with('}')).then_some(at)
        }
        // Reported where the scalar starts: the culprit is its first continuation line
        // no deeper than the line the scalar starts on.
        "invalid indentation in quoted scalar" => {
            let key = indent(lines.get(at)?);
            (at + 1..lines.len()).find(|&i| {
                let l = &lines[i];
                !l.trim().is_empty() && indent(l) <= key
            })
        }
        _ => None,
    }
}

/// `(lines before it, text)` of each document of a stream, split at marker lines: a
/// `---` (alone or followed by a space) starts a document, a `...` ends one. Markers are
/// only markers at the start of a line, where no scalar's content can be.
fn split_documents(source: &str) -> Vec<(u32, &str)> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut offset = 0usize;
    for (line, text) in source.split_inclusive('\n').enumerate() {
        let bare = text.trim_end_matches(['\n', '\r']);
        let opens = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let closes = bare == "..." || bare.starts_with("... ");
        if opens && offset > start {
            chunks.push((start_line, &source[start..offset]));
            start = offset;
            start_line = line as u32;
        }
        offset += text.len();
        if closes {
            chunks.push((start_line, &source[start..offset]));
            start = offset;
            start_line = line as u32 + 1;
        }
    }
    if offset > start {
        chunks.push((start_line, &source[start..offset]));
    }
    chunks
}

fn shift(node: &mut Node, lines: u32) {
    node.pos.line += lines;
    match &mut node.kind {
        NodeKind::Scalar { .. } => {}
        NodeKind::Sequence(items) => items.iter_mut().for_each(|n| shift(n, lines)),
        NodeKind::Mapping(entries) => {
            for (k, v) in entries {
                k.pos.line += lines;
                shift(v, lines);
            }
        }
    }
}

impl Node {
    /// `(key position, value position)` of the node at a JSON pointer, or of its deepest
    /// ancestor that exists: a finding about a missing field points at where it belongs.
    /// Walks the tree, so nothing is indexed for the objects that have no findings.
    pub fn locate(&self, pointer: &str) -> (Pos, Pos) {
        let mut node = self;
        let mut found = (self.pos, self.pos);
        for segment in crate::pointer::segments(pointer) {
            let next = match &node.kind {
                NodeKind::Mapping(entries) => entries
                    .iter()
                    .find(|(k, _)| k.text == segment)
                    .map(|(k, v)| (k.pos, v)),
                NodeKind::Sequence(items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|v| (v.pos, v)),
                NodeKind::Scalar { .. } => None,
            };
            match next {
                Some((key, v)) => {
                    found = (key, v.pos);
                    node = v;
                }
                None => break,
            }
        }
        found
    }
}

/// What a YAML 1.1 reader (go-yaml v2, which kubectl and Helm use) makes of a plain
/// scalar that this reader, on the YAML 1.2 core schema, keeps as a string: `yes`, `on`
/// and `n` are booleans there, `1_000` and `0b101` numbers, `.inf` a float.
pub fn yaml11_reading(text: &str) -> Option<&'static str> {
    if yaml11_bool(text).is_some() {
        return Some("a boolean");
    }
    match text {
        ".inf" | ".Inf" | ".INF" | "-.inf" | "-.Inf" | "-.INF" | "+.inf" | ".nan" | ".NaN"
        | ".NAN" => return Some("a number"),
        _ => {}
    }
    let body = text.trim_start_matches(['-', '+']);
    let numeric = !body.is_empty()
        && body.as_bytes()[0].is_ascii_digit()
        && ((body.contains('_')
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'_' || b == b'.'))
            || (body.starts_with("0b")
                && body[2..]
                    .bytes()
                    .all(|b| b == b'0' || b == b'1' || b == b'_')
                && body.len() > 2));
    if numeric && core_scalar(text, Style::Plain, None).is_string() {
        return Some("a number");
    }
    None
}

/// The boolean a YAML 1.1 reader makes of a word the YAML 1.2 core schema keeps as a
/// string (`yes` is true, `off` false); None for any other text.
pub fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn remember(anchors: &mut HashMap<usize, Node>, anchor: usize, node: &Node) {
    if anchor != 0 {
        anchors.insert(anchor, node.clone());
    }
}

fn count_nodes(node: &Node, cap: usize) -> usize {
    let mut count = 0usize;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        count += 1;
        if count > cap {
            break;
        }
        match &n.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Sequence(items) => todo.extend(items),
            NodeKind::Mapping(entries) => todo.extend(entries.iter().map(|(_, v)| v)),
        }
    }
    count
}

/// A tag as it was written: `!!x` for the core schema's, else handle and suffix.
fn show_tag(t: &saphyr_parser::Tag) -> String {
    if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" {
        format!("!!{}", t.suffix)
    } else {
        format!("{}{}", t.handle, t.suffix)
    }
}

fn check_collection_tag(
    tag: Option<&saphyr_parser::Tag>,
    pos: Pos,
    expected: &str,
) -> Result<(), Error> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && t.suffix == expected => Ok(()),
        Some(t) => Err(Error::new(
            ErrorKind::Tag,
            pos,
            format!("tag `{}` is not allowed here", show_tag(t)),
        )),
    }
}

fn scalar_node(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&saphyr_parser::Tag>,
    pos: Pos,
) -> Result<Node, Error> {
    let tag = match tag {
        None => None,
        Some(t)
            if t.is_yaml_core_schema()
                && matches!(t.suffix.as_str(), "str" | "int" | "float" | "bool" | "null") =>
        {
            Some(t.suffix.clone())
        }
        Some(t) => {
            return Err(Error::new(
                ErrorKind::Tag,
                pos,
                format!(
                    "tag `{}` is not allowed; only the core tags !!str, !!int, !!float, !!bool and !!null are",
                    show_tag(t)
                ),
            ))
        }
    };
    let style = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
        _ => Style::Block,
    };
    // The parser hands over text it grew character by character; kept for the life of
    // the document, its spare capacity was a fifth of the memory of a large validate.
    let mut text = text.into_owned();
    text.shrink_to_fit();
    Ok(Node {
        pos,
        kind: NodeKind::Scalar { text, style, tag },
    })
}

// ---------------------------------------------------------------------------------
// Typing scalars.

/// What a scalar means under the YAML 1.2 core schema, the schema Kubernetes tooling
/// has moved to. `yes`, `on` and `0755`-with-a-leading-zero are not special here.
pub fn core_scalar(text: &str, style: Style, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_string()),
        Some("null") => return Value::Null,
        Some("bool") => {
            return match text {
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                _ => Value::String(text.to_string()),
            }
        }
        Some("int") => return parse_int(text).unwrap_or_else(|| Value::String(text.into())),
        Some("float") => {
            return parse_float(text)
                .or_else(|| parse_int(text))
                .unwrap_or_else(|| Value::String(text.into()))
        }
        _ => {}
    }
    if style != Style::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => parse_int(text)
            .or_else(|| parse_float(text))
            .unwrap_or_else(|| Value::String(text.to_string())),
    }
}

/// A core-schema integer: decimal, `0o` octal or `0x` hex.
pub fn parse_int(text: &str) -> Option<Value> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude: u64 = if let Some(oct) = digits.strip_prefix("0o") {
        if neg || oct.is_empty() {
            return None;
        }
        u64::from_str_radix(oct, 8).ok()?
    } else if let Some(hex) = digits.strip_prefix("0x") {
        if neg || hex.is_empty() {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()?
    };
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Value::Number(Number::from(-v)))
    } else {
        Some(Value::Number(Number::from(magnitude)))
    }
}

fn parse_float(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let body = text.trim_start_matches(['-', '+']);
    if body.is_empty() || text.len() - body.len() > 1 {
        return None;
    }
    // Only the core schema's float shape; Rust's parser accepts more ("inf", "1.").
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_exp = false;
    let mut prev = 0u8;
    for &b in body.as_bytes() {
        match b {
            b'0'..=b'9' => seen_digit = true,
            b'.' if !seen_dot && !seen_exp => seen_dot = true,
            b'e' | b'E' if seen_digit && !seen_exp => seen_exp = true,
            b'+' | b'-' if matches!(prev, b'e' | b'E') => {}
            _ => return None,
        }
        prev = b;
    }
    if !seen_digit || matches!(bytes.last(), Some(b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

/// Converts a node to JSON under the core schema (for manifests, which have no schema of
/// ours to type them).
pub fn to_json(node: &Node) -> Value {
    convert(node, core_scalar)
}

/// A manifest as kubectl and Helm send it. Their reader (go-yaml v2) takes a plain
/// integer with a leading zero as octal, and file modes are written that way:
/// `defaultMode: 0644` is 420 to the API server, where the YAML 1.2 core schema reads
/// 644, a mode the server refuses. Everything else reads as in [`to_json`]; the YAML 1.1
/// words and numbers this reader keeps as strings are reported where they matter
/// (`yaml-ambiguous-scalar`), not silently converted.
pub fn manifest_to_json(node: &Node) -> Value {
    convert(node, |text, style, tag| {
        match (style, tag, yaml11_octal(text)) {
            (Style::Plain, None, Some(n)) => Value::Number(Number::from(n)),
            _ => as_go_writes_it(core_scalar(text, style, tag)),
        }
    })
}

/// Go's JSON encoder writes a whole float without its fraction (`2.0` and `1e1` go to the
/// server as `2` and `10`), so an integer field takes them.
fn as_go_writes_it(value: Value) -> Value {
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
            Value::Number(Number::from(f as i64))
        }
        _ => value,
    }
}

/// `0644`, `-017`: go-yaml v2's octal integers (a sign, a zero, octal digits).
fn yaml11_octal(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = body.strip_prefix('0').filter(|d| !d.is_empty())?;
    if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let n = i64::from_str_radix(digits, 8).ok()?;
    Some(if neg { -n } else { n })
}

fn convert(node: &Node, scalar: fn(&str, Style, Option<&str>) -> Value) -> Value {
    match &node.kind {
        NodeKind::Scalar { text, style, tag } => scalar(text, *style, tag.as_deref()),
        NodeKind::Sequence(items) => {
            Value::Array(items.iter().map(|i| convert(i, scalar)).collect())
        }
        NodeKind::Mapping(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                map.insert(k.text.clone(), convert(v, scalar));
            }
            Value::Object(map)
        }
    }
}

/// Where each JSON pointer of a document came from: the key's position (for "unknown
/// field" findings) and the value's (for "wrong value" findings).
#[derive(Debug, Default, Clone)]
pub struct Positions {
    map: BTreeMap<String, (Pos, Pos)>,
}

impl Positions {
    pub fn of(root: &Node) -> Self {
        let mut p = Positions::default();
        p.map.insert(String::new(), (root.pos, root.pos));
        p.walk(root, &mut String::new());
        p
    }

    fn walk(&mut self, node: &Node, pointer: &mut String) {
        let len = pointer.len();
        match &node.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    self.map.insert(pointer.clone(), (item.pos, item.pos));
                    self.walk(item, pointer);
                    pointer.truncate(len);
                }
            }
            NodeKind::Mapping(entries) => {
                for (k, v) in entries {
                    pointer.push('/');
                    pointer.push_str(&crate::pointer::escape(&k.text));
                    self.map.insert(pointer.clone(), (k.pos, v.pos));
                    self.walk(v, pointer);
                    pointer.truncate(len);
                }
            }
        }
    }

    /// The position of the value at `pointer`, or of its nearest ancestor that exists.
    pub fn value(&self, pointer: &str) -> Pos {
        self.nearest(pointer).1
    }

    /// The position of the key at `pointer`, or of its nearest ancestor that exists.
    pub fn key(&self, pointer: &str) -> Pos {
        self.nearest(pointer).0
    }

    pub fn contains(&self, pointer: &str) -> bool {
        self.map.contains_key(pointer)
    }

    fn nearest(&self, pointer: &str) -> (Pos, Pos) {
        let mut p = pointer;
        loop {
            if let Some(found) = self.map.get(p) {
                return *found;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return self.map.get("").copied().unwrap_or_default(),
            }
        }
    }
}

/// Turns a dotted values path (`ingress.host`, `env.LOG_LEVEL`) into a JSON pointer.
pub fn dotted_to_pointer(dotted: &str) -> String {
    if dotted.is_empty() {
        return String::new();
    }
    dotted
        .split('.')
        .map(|s| format!("/{}", crate::pointer::escape(s)))
        .collect()
}

// ---------------------------------------------------------------------------------
// Writing.

/// Canonical block YAML for a JSON value: keys sorted (serde_json's map is ordered),
/// two-space indents, sequences of mappings in the compact `- key: value` form, and
/// strings quoted whenever a YAML 1.1 or 1.2 reader might take them for anything else.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            write_scalar(&mut out, other);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_map(out: &mut String, map: &Map<String, Value>, level: usize) {
    let mut first = true;
    for (k, v) in map {
        if !first || !out.ends_with("- ") {
            indent(out, level);
        }
        first = false;
        write_string(out, k);
        out.push(':');
        write_child(out, v, level);
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, level + 2),
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                write_seq(out, a, level + 2)
            }
            other => {
                write_scalar(out, other);
                out.push('\n');
            }
        }
    }
}

fn write_child(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, level + 2);
        }
        // Sequences sit at their key's indentation, as kubectl and kustomize write them.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, level);
        }
        other => {
            out.push(' ');
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn write_string(out: &mut String, s: &str) {
    if plain_is_safe(s) {
        out.push_str(s);
    } else {
        // A JSON string is a valid YAML double-quoted scalar with the same meaning.
        out.push_str(&serde_json::to_string(s).expect("strings always serialise"));
    }
}

/// Whether `s` can be written unquoted and read back as the same string by any YAML
/// reader: YAML 1.2 core, YAML 1.1 (go-yaml v2, PyYAML) and kubectl's.
fn plain_is_safe(s: &str) -> bool {
    let first = match s.chars().next() {
        Some(c) => c,
        None => return false,
    };
    if !(first.is_ascii_alphanumeric() || first == '/' || first == '_') {
        return false;
    }
    if s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./@+=: ".contains(c))
    {
        return false;
    }
    if s.contains(": ") || s.contains(" #") {
        return false;
    }
    // Anything a reader might type: numbers in every YAML 1.1 form (0755, 1_000, 1e3,
    // 0x1F, 1:20 sexagesimal), booleans and nulls in every spelling, timestamps.
    if first.is_ascii_digit() || first == '.' {
        let numberish = s
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoO_.:+- ".contains(c));
        if numberish {
            return false;
        }
    }
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~" | ".inf" | ".nan"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Document>, Error> {
        parse_stream(s, Limits::VALUES)
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let docs = parse("a: 1\nb:\n  c: x\n").unwrap();
        let p = Positions::of(&docs[0].root);
        assert_eq!(p.key("/b/c"), Pos { line: 3, column: 3 });
        assert_eq!(p.value("/b/c"), Pos { line: 3, column: 6 });
        assert_eq!(p.value("/b/missing"), Pos { line: 3, column: 3 });
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second_key() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::DuplicateKey);
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("line 1"), "{}", err.message);
        // Past the keys a scan covers, the index answers: a duplicate of a key read
        // before the index was built, and of one read after.
        let keys: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        for (dup, first_line) in [("k2", 3), ("k30", 31)] {
            let err = parse(&format!("{keys}{dup}: again\n")).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DuplicateKey, "{dup}");
            assert_eq!(err.pos.line, 41, "{dup}");
            let said = format!("line {first_line})");
            assert!(err.message.contains(&said), "{dup}: {}", err.message);
        }
        let docs = parse(&keys).unwrap();
        assert!(matches!(&docs[0].root.kind, NodeKind::Mapping(e) if e.len() == 40));
    }

    #[test]
    fn texts_kept_from_the_parser_hold_no_spare_capacity() {
        // Every key and scalar lives as long as its document; a validate run keeps
        // tens of thousands of documents.
        let docs = parse(
            "metadata:\n  name: a-name-long-enough-to-be-grown-by-the-scanner\n  labels: {app.kubernetes.io/name: \"quoted value\", team: payments}\nlist: [one, 'two', |\n  block text\n]\n",
        )
        .unwrap();
        let mut todo = vec![&docs[0].root];
        let mut texts = 0;
        while let Some(node) = todo.pop() {
            match &node.kind {
                NodeKind::Scalar { text, .. } => {
                    texts += 1;
                    assert_eq!(text.capacity(), text.len(), "{text:?}");
                }
                NodeKind::Sequence(items) => todo.extend(items),
                NodeKind::Mapping(entries) => {
                    for (k, v) in entries {
                        texts += 1;
                        assert_eq!(k.text.capacity(), k.text.len(), "{:?}", k.text);
                        todo.push(v);
                    }
                }
            }
        }
        assert_eq!(texts, 12);
    }

    #[test]
    fn billion_laughs_stops_at_the_budget() {
        let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            s.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert_eq!(parse(&s).unwrap_err().kind, ErrorKind::AliasBudget);
    }

    #[test]
    fn a_small_alias_is_fine() {
        let docs = parse("base: &b {x: 1}\nother: *b\n").unwrap();
        assert_eq!(to_json(&docs[0].root)["other"]["x"], 1);
    }

    #[test]
    fn merge_keys_merge_in_manifests_only() {
        let text = "base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n";
        let docs = parse_stream(text, Limits::MANIFESTS).unwrap();
        let x = &to_json(&docs[0].root)["x"];
        assert_eq!(x, &serde_json::json!({"a": 1, "b": 3}));
        let docs = parse_stream(text, Limits::VALUES).unwrap();
        assert!(to_json(&docs[0].root)["x"].get("<<").is_some());
        let docs = parse_stream("x:\n  <<: [{a: 1}, {a: 2, c: 3}]\n", Limits::MANIFESTS).unwrap();
        assert_eq!(
            to_json(&docs[0].root)["x"],
            serde_json::json!({"a": 1, "c": 3})
        );
        assert!(parse_stream("x:\n  <<: 3\n", Limits::MANIFESTS).is_err());
    }

    #[test]
    fn a_bad_document_costs_only_itself() {
        let text = "a: 1\n---\nb: [\n---\nc: 3\n";
        let docs = parse_documents(text, Limits::MANIFESTS);
        assert_eq!(docs.len(), 3);
        assert_eq!(to_json(&docs[0].as_ref().unwrap().root)["a"], 1);
        let err = docs[1].as_ref().unwrap_err();
        assert!(err.pos.line >= 3, "{err:?}");
        let c = &docs[2].as_ref().unwrap().root;
        assert_eq!(c.locate("/c").0.line, 5);
    }

    #[test]
    fn locate_finds_the_nearest_existing_node() {
        let docs = parse("a:\n  - x: 1\n    y: 2\n").unwrap();
        let root = &docs[0].root;
        assert_eq!(
            root.locate("/a/0/y"),
            (Pos { line: 3, column: 5 }, Pos { line: 3, column: 8 })
        );
        assert_eq!(root.locate("/a/0/z").1, Pos { line: 2, column: 5 });
        assert_eq!(root.locate("").1, root.pos);
    }

    #[test]
    fn yaml11_readings() {
        for (t, r) in [
            ("yes", Some("a boolean")),
            ("Off", Some("a boolean")),
            ("1_000", Some("a number")),
            ("0b101", Some("a number")),
            ("true", None),
            ("12", None),
            ("hello", None),
            ("1.4.2", None),
        ] {
            assert_eq!(yaml11_reading(t), r, "{t}");
        }
    }

    #[test]
    fn manifests_forgive_the_indentation_kubectl_forgives_and_nothing_else() {
        let read = |text: &str, limits: Limits| -> Result<Value, String> {
            let mut docs = parse_documents(text, limits);
            docs.remove(0)
                .map(|d| manifest_to_json(&d.root))
                .map_err(|e| format!("{}:{} {}", e.pos.line, e.pos.column, e.message))
        };
        let flow = "spec:\n  args: [\n    \"sleep\", \"1\",\n  ]\n  env: {\n    a: b,\n  }\n";
        assert_eq!(
            read(flow, Limits::MANIFESTS),
            Ok(serde_json::json!({"spec": {"args": ["sleep", "1"], "env": {"a": "b"}}}))
        );
        let quoted = "data:\n  a: \"x\n  y\"\n  b: 'one\n two\n  three'\n  c: d\n";
        assert_eq!(
            read(quoted, Limits::MANIFESTS),
            Ok(serde_json::json!({"data": {"a": "x y", "b": "one two three", "c": "d"}}))
        );
        // In a stream, the document that needs it is repaired, with its lines.
        let stream = format!("a: 1\n---\n{flow}");
        let docs = parse_documents(&stream, Limits::MANIFESTS);
        assert_eq!(docs.len(), 2);
        let second = docs[1].as_ref().expect("repaired");
        assert_eq!(
            manifest_to_json(&second.root)["spec"]["args"],
            serde_json::json!(["sleep", "1"])
        );
        assert_eq!(second.root.pos.line, 3);
        // Values files are this product's own format: strict YAML 1.2.
        assert!(read(flow, Limits::VALUES).is_err());
        // A block mapping out of line is an error for kubectl too: not "repaired".
        let block = "a:\n  b: 1\n c: 2\n";
        assert!(read(block, Limits::MANIFESTS).is_err());
    }

    #[test]
    fn manifests_read_leading_zero_integers_as_kubectl_does() {
        let doc = |text: &str| {
            let docs = parse_documents(text, Limits::MANIFESTS);
            manifest_to_json(&docs.into_iter().next().unwrap().unwrap().root)
        };
        assert_eq!(
            doc("a: 0644\nb: \"0644\"\nc: 644\nd: 0\ne: -017\nf: 0o17\ng: 089\nh: !!int 0644"),
            serde_json::json!({"a": 420, "b": "0644", "c": 644, "d": 0, "e": -15, "f": 15, "g": 89, "h": 644})
        );
        assert_eq!(
            doc("a: 2.0\nb: 1e1\nc: 1.5\nd: \"2.0\"\ne: -3.0"),
            serde_json::json!({"a": 2, "b": 10, "c": 1.5, "d": "2.0", "e": -3})
        );
    }

    #[test]
    fn core_schema_typing() {
        let j = |s: &str| core_scalar(s, Style::Plain, None);
        assert_eq!(j("yes"), Value::String("yes".into()));
        assert_eq!(j("on"), Value::String("on".into()));
        assert_eq!(j("true"), Value::Bool(true));
        assert_eq!(j("0755"), serde_json::json!(755));
        assert_eq!(j("0o755"), serde_json::json!(493));
        assert_eq!(j("1e3"), serde_json::json!(1000.0));
        assert_eq!(j("1.4.2"), Value::String("1.4.2".into()));
        assert_eq!(j("~"), Value::Null);
        assert_eq!(
            core_scalar("true", Style::Quoted, None),
            Value::String("true".into())
        );
        assert_eq!(
            core_scalar("12", Style::Plain, Some("str")),
            Value::String("12".into())
        );
    }

    #[test]
    fn writer_quotes_whatever_a_reader_could_retype() {
        for s in [
            "yes", "No", "on", "0755", "1e3", "1_000", "0x1F", "1:20", "", " a", "a: b", "- x",
            "#x", "null", "12", "1.4", "x\ny", "{a}", "*a", "&a", "!t", "%x", "@x", "a #b", "a:",
        ] {
            let out = to_yaml(&serde_json::json!({ "k": s }));
            assert!(out.starts_with("k: \""), "{s:?} was written plain: {out}");
            let back = parse_stream(&out, Limits::MANIFESTS).unwrap();
            assert_eq!(to_json(&back[0].root)["k"], Value::String(s.into()));
        }
        for s in [
            "payments-api",
            "registry.example.com/a/b:1.4.2",
            "RollingUpdate",
            "/healthz",
        ] {
            let out = to_yaml(&serde_json::json!({ "k": s }));
            assert_eq!(out, format!("k: {s}\n"));
        }
    }

    #[test]
    fn writer_round_trips_nested_values() {
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "X",
            "spec": {"list": [{"a": 1, "b": [1, 2], "c": {}}, [3, 4], "s"], "empty": [], "n": null}
        });
        let out = to_yaml(&v);
        let back = parse_stream(&out, Limits::MANIFESTS).unwrap();
        assert_eq!(to_json(&back[0].root), v, "{out}");
    }
}
