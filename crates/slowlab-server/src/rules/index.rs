//! The rule index: which rules can match a path, without looking at the others.
//!
//! Each rule is filed under its path's literal text: an exact path under the path itself, and a
//! prefix, a glob or a `{param}` pattern under the text every path it matches starts with
//! (`/api/orders/` for `/api/orders/{id}`; the empty text for a rule without a path). A lookup
//! takes the rules filed under the path and under each of its starts that some rule was filed
//! under, and checks them in file order: the first that matches in full is the one a plain scan of
//! every rule would find, so precedence stays "first matching rule in file order".

use std::collections::HashMap;

use super::pattern::PathMatch;

/// Rules by the literal text of their paths. Indices are positions in the file's order.
#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    /// Exact paths: the rules whose path is this text.
    exact: HashMap<Box<str>, Vec<usize>>,
    /// Prefixes, globs and rules without a path: the rules whose matches all start with this text.
    starts: HashMap<Box<str>, Vec<usize>>,
    /// The lengths of the keys of `starts`, ascending, each once: the only starts worth looking up.
    lengths: Vec<usize>,
}

impl RuleIndex {
    /// Files each rule's path (`None`: a rule that matches any path), in file order.
    pub(crate) fn new<'a>(paths: impl Iterator<Item = Option<&'a PathMatch>>) -> RuleIndex {
        let mut index = RuleIndex::default();
        for (position, path) in paths.enumerate() {
            let (map, key) = match path {
                Some(exact @ PathMatch::Exact(_)) => (&mut index.exact, exact.literal()),
                Some(other) => (&mut index.starts, other.literal()),
                None => (&mut index.starts, ""),
            };
            match map.get_mut(key) {
                Some(list) => list.push(position),
                None => {
                    map.insert(key.into(), vec![position]);
                }
            }
        }
        index.lengths = index.starts.keys().map(|key| key.len()).collect();
        index.lengths.sort_unstable();
        index.lengths.dedup();
        index.exact.shrink_to_fit();
        index.starts.shrink_to_fit();
        index
    }

    /// The lowest position among the rules that can match `path` for which `matches` holds.
    pub(crate) fn first(
        &self,
        path: &str,
        mut matches: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let mut lists: Vec<&[usize]> = Vec::new();
        if let Some(list) = self.exact.get(path) {
            lists.push(list);
        }
        for &length in &self.lengths {
            if length > path.len() {
                break;
            }
            if path.is_char_boundary(length)
                && let Some(list) = self.starts.get(&path[..length])
            {
                lists.push(list);
            }
        }
        // Each list is in file order: take the lowest head of all of them, one at a time.
        loop {
            let (which, &position) = lists
                .iter()
                .enumerate()
                .filter_map(|(which, list)| list.first().map(|head| (which, head)))
                .min_by_key(|(_, head)| **head)?;
            if matches(position) {
                return Some(position);
            }
            lists[which] = &lists[which][1..];
        }
    }
}
