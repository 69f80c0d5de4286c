// Copyright 2020 The Evcxr Authors.
//
// Licensed under the Apache License, Version 2.0 <LICENSE or
// https://www.apache.org/licenses/LICENSE-2.0> or the MIT license <LICENSE
// or https://opensource.org/licenses/MIT>, at your option. This file may not be
// copied, modified, or distributed except according to those terms.

use ra_ap_syntax::ast;

/// Returns the name of an item if it has one.
pub(crate) fn item_name(item: &ast::Item) -> Option<String> {
    item_ident(item).map(|ident| format!("{ident}"))
}

/// Returns the ident of an item if it has one.
fn item_ident(item: &ast::Item) -> Option<ast::Name> {
    match item {
        ast::Item::Const(i) => ast::HasName::name(i),
        ast::Item::Enum(i) => ast::HasName::name(i),
        ast::Item::Fn(i) => ast::HasName::name(i),
        ast::Item::MacroRules(i) => ast::HasName::name(i),
        ast::Item::MacroDef(i) => ast::HasName::name(i),
        ast::Item::Module(i) => ast::HasName::name(i),
        ast::Item::Static(i) => ast::HasName::name(i),
        ast::Item::Struct(i) => ast::HasName::name(i),
        ast::Item::Trait(i) => ast::HasName::name(i),
        ast::Item::TypeAlias(i) => ast::HasName::name(i),
        ast::Item::Union(i) => ast::HasName::name(i),
        _ => None,
    }
}

/// forja patch 0020: the names by which a cell reaches an item of the
/// session (see [`item_keys`]).
#[derive(Debug, Default)]
pub(crate) struct ItemKeys {
    /// The item's name and the names of what it defines inside (fns,
    /// variants, consts, types, traits' methods, macros, modules).
    pub(crate) defines: std::collections::HashSet<String>,
    /// For each impl inside, the names its trait and self type end in, with
    /// their generic arguments' (`impl forja::Shareable for Stats`:
    /// `Shareable`, `Stats`); they count only where the session defines
    /// them, so `impl Display for Point` comes with `Point`, not with every
    /// `Display`. What is inside an impl is reached through its type or
    /// its trait.
    pub(crate) impl_names: std::collections::HashSet<String>,
}

/// forja patch 0020: how a cell reaches the item `code` (see [`ItemKeys`]).
/// `None` for what must always be compiled: a `use`, an `extern crate`, a
/// macro call at the top level (it may define anything), or an item that
/// names nothing.
pub(crate) fn item_keys(code: &str) -> Option<ItemKeys> {
    use ra_ap_syntax::AstNode;
    use ra_ap_syntax::SyntaxKind;
    let file = ra_ap_syntax::SourceFile::parse(code, crate::rust_analyzer::EDITION).tree();
    let mut keys = ItemKeys::default();
    for item in ast::HasModuleItem::items(&file) {
        match item {
            ast::Item::Use(_)
            | ast::Item::ExternCrate(_)
            | ast::Item::MacroCall(_)
            | ast::Item::ExternBlock(_) => return None,
            _ => {}
        }
    }
    for node in file.syntax().descendants() {
        if let Some(imp) = ast::Impl::cast(node.clone()) {
            let header = [
                imp.trait_().map(|t| t.syntax().clone()),
                imp.self_ty().map(|t| t.syntax().clone()),
            ];
            // Each whole path's last segment: `Stats`, not `forja`.
            let paths = header
                .iter()
                .flatten()
                .flat_map(|t| t.descendants_with_tokens().filter_map(|n| n.into_node()))
                .filter_map(ast::Path::cast)
                .filter(|path| path.syntax().parent().and_then(ast::Path::cast).is_none());
            for path in paths {
                if let Some(name) = path.segment().and_then(|s| s.name_ref()) {
                    keys.impl_names.insert(name.text().to_string());
                }
            }
        } else if let Some(name) = ast::Name::cast(node) {
            let Some(parent) = name.syntax().parent() else {
                continue;
            };
            let defines = match parent.kind() {
                SyntaxKind::FN | SyntaxKind::CONST | SyntaxKind::TYPE_ALIAS => {
                    !parent.ancestors().any(|a| a.kind() == SyntaxKind::IMPL)
                }
                SyntaxKind::VARIANT
                | SyntaxKind::STATIC
                | SyntaxKind::STRUCT
                | SyntaxKind::ENUM
                | SyntaxKind::UNION
                | SyntaxKind::TRAIT
                | SyntaxKind::MACRO_RULES
                | SyntaxKind::MACRO_DEF
                | SyntaxKind::MODULE => true,
                _ => false,
            };
            if defines {
                keys.defines.insert(name.text().to_string());
            }
        }
    }
    (!keys.defines.is_empty() || !keys.impl_names.is_empty()).then_some(keys)
}

/// forja patch 0020: every name the items of `parsed` define.
pub(crate) fn defined_names(
    parsed: &[Option<std::sync::Arc<ItemKeys>>],
) -> std::collections::HashSet<&str> {
    parsed
        .iter()
        .flatten()
        .flat_map(|k| &k.defines)
        .map(String::as_str)
        .collect()
}

/// forja patch 0020: the words of `text` (identifiers, keywords, numbers;
/// string literals and comments are not told apart).
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}
