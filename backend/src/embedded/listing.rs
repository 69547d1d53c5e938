//! Listing a bucket as S3 does: keys in UTF-8 byte order, rolled up into common prefixes at
//! a delimiter, one page at a time, and S3's URL encoding for `encoding-type=url`.
//!
//! A page starts strictly after a marker (the `start-after` or `marker` parameter, or the key
//! or common prefix that ended the previous page). A common prefix is listed only when it
//! sorts after the marker, so a page that ended on a common prefix is never followed by the
//! same prefix again, whatever keys lie under it.

use std::ops::Bound;

use super::store::{ObjectIndex, ObjectSummary};

/// What a page of a listing asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListQuery<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Roll up keys at the first occurrence of this after the prefix (none when empty).
    pub delimiter: Option<&'a str>,
    /// Start strictly after this key or common prefix.
    pub after: Option<&'a str>,
    /// At most this many keys and common prefixes together.
    pub max_keys: usize,
}

/// One entry of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListEntry {
    /// An object.
    Object(String, ObjectSummary),
    /// A common prefix, ending with the delimiter.
    CommonPrefix(String),
}

impl ListEntry {
    /// The key or prefix, which is also the marker that resumes after this entry.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Object(key, _) | Self::CommonPrefix(key) => key,
        }
    }
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListPage {
    /// Objects and common prefixes in order.
    pub entries: Vec<ListEntry>,
    /// Whether more entries follow.
    pub truncated: bool,
}

impl ListPage {
    /// The marker that resumes after this page, when it is truncated.
    pub(crate) fn next_marker(&self) -> Option<&str> {
        if self.truncated {
            self.entries.last().map(ListEntry::name)
        } else {
            None
        }
    }
}

/// Lists one page of an index.
pub(crate) fn list_page(index: &ObjectIndex, query: &ListQuery<'_>) -> ListPage {
    if query.max_keys == 0 {
        return ListPage {
            entries: Vec::new(),
            truncated: false,
        };
    }
    let delimiter = query.delimiter.filter(|d| !d.is_empty());
    let start = match query.after {
        Some(after) if after >= query.prefix => Bound::Excluded(after),
        _ => Bound::Included(query.prefix),
    };

    let mut entries = Vec::new();
    let mut truncated = false;
    for (key, summary) in index.range::<str, _>((start, Bound::Unbounded)) {
        if !key.starts_with(query.prefix) {
            break;
        }

        let entry = match delimiter.and_then(|d| common_prefix(key, query.prefix.len(), d)) {
            Some(prefix) => {
                let repeated =
                    matches!(entries.last(), Some(ListEntry::CommonPrefix(p)) if p == prefix);
                let not_after_marker = query.after.is_some_and(|after| prefix <= after);
                if repeated || not_after_marker {
                    continue;
                }
                ListEntry::CommonPrefix(prefix.to_owned())
            }
            None => ListEntry::Object(key.clone(), summary.clone()),
        };

        if entries.len() == query.max_keys {
            truncated = true;
            break;
        }
        entries.push(entry);
    }

    ListPage { entries, truncated }
}

/// The common prefix a key rolls up into: everything up to and including the first
/// delimiter after the listing's prefix.
fn common_prefix<'k>(key: &'k str, prefix_len: usize, delimiter: &str) -> Option<&'k str> {
    let rest = &key[prefix_len..];
    rest.find(delimiter)
        .map(|at| &key[..prefix_len + at + delimiter.len()])
}

/// S3's URL encoding of keys in listings (`encoding-type=url`) and in event notifications:
/// letters, digits and `-_.*/` stay, a space becomes `+`, every other byte of the UTF-8 form
/// becomes `%XX`.
pub(crate) fn url_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
    out
}

/// Decodes a continuation token made by [`continuation_token`]; `None` when it is not one.
pub(crate) fn parse_continuation_token(token: &str) -> Option<String> {
    String::from_utf8(super::store::unhex(token)?).ok()
}

/// An opaque token that resumes a listing after `marker`.
pub(crate) fn continuation_token(marker: &str) -> String {
    super::store::hex(marker.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(keys: &[&str]) -> ObjectIndex {
        keys.iter()
            .map(|k| {
                let summary = ObjectSummary {
                    size: 1,
                    etag: "e".into(),
                    last_modified_ms: 0,
                };
                ((*k).to_owned(), summary)
            })
            .collect()
    }

    fn names(page: &ListPage) -> Vec<&str> {
        page.entries.iter().map(ListEntry::name).collect()
    }

    fn query<'a>(
        prefix: &'a str,
        delimiter: Option<&'a str>,
        after: Option<&'a str>,
        max_keys: usize,
    ) -> ListQuery<'a> {
        ListQuery {
            prefix,
            delimiter,
            after,
            max_keys,
        }
    }

    #[test]
    fn lists_in_utf8_byte_order() {
        let idx = index(&["b", "a", "é", "Z", "a/b", "a b"]);
        let page = list_page(&idx, &query("", None, None, 1000));
        assert_eq!(names(&page), ["Z", "a", "a b", "a/b", "b", "é"]);
        assert!(!page.truncated);
    }

    #[test]
    fn delimiter_rolls_up_common_prefixes_once() {
        let idx = index(&["a/1", "a/2", "a/b/3", "b", "c/1", "c/"]);
        let page = list_page(&idx, &query("", Some("/"), None, 1000));
        assert_eq!(names(&page), ["a/", "b", "c/"]);
        let page = list_page(&idx, &query("a/", Some("/"), None, 1000));
        assert_eq!(names(&page), ["a/1", "a/2", "a/b/"]);
    }

    #[test]
    fn pages_resume_after_the_marker_without_repeating_a_common_prefix() {
        let idx = index(&["a/1", "a/2", "b", "c/1", "c/2", "d"]);
        let mut after: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let page = list_page(&idx, &query("", Some("/"), after.as_deref(), 1));
            seen.extend(names(&page).into_iter().map(str::to_owned));
            match page.next_marker() {
                Some(marker) => after = Some(marker.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["a/", "b", "c/", "d"]);
    }

    #[test]
    fn page_that_exactly_fills_max_keys_is_not_truncated() {
        let idx = index(&["a", "b"]);
        let page = list_page(&idx, &query("", None, None, 2));
        assert!(!page.truncated);
        let page = list_page(&idx, &query("", None, None, 1));
        assert!(page.truncated);
        assert_eq!(page.next_marker(), Some("a"));
    }

    #[test]
    fn prefix_and_start_after_narrow_the_listing() {
        let idx = index(&["p/1", "p/2", "p/3", "q/1", "o/9"]);
        let page = list_page(&idx, &query("p/", None, Some("p/1"), 1000));
        assert_eq!(names(&page), ["p/2", "p/3"]);
        let page = list_page(&idx, &query("p/", None, Some("a"), 1000));
        assert_eq!(names(&page), ["p/1", "p/2", "p/3"]);
        let page = list_page(&idx, &query("p/", None, Some("z"), 1000));
        assert!(page.entries.is_empty());
    }

    #[test]
    fn zero_max_keys_lists_nothing() {
        let idx = index(&["a"]);
        let page = list_page(&idx, &query("", None, None, 0));
        assert!(page.entries.is_empty());
        assert!(!page.truncated);
    }

    #[test]
    fn url_encoding_matches_s3() {
        assert_eq!(url_encode("summer trip (1).jpg"), "summer+trip+%281%29.jpg");
        assert_eq!(url_encode("a+b%c/d~e"), "a%2Bb%25c/d%7Ee");
        assert_eq!(url_encode("é"), "%C3%A9");
        assert_eq!(url_encode("A-z_0.9*"), "A-z_0.9*");
    }

    #[test]
    fn continuation_tokens_round_trip_and_reject_garbage() {
        for marker in ["", "a/b", "é ü/..//"] {
            assert_eq!(
                parse_continuation_token(&continuation_token(marker)).as_deref(),
                Some(marker)
            );
        }
        assert_eq!(parse_continuation_token("zz"), None);
        assert_eq!(parse_continuation_token("abc"), None);
        assert_eq!(parse_continuation_token("ff"), None);
    }
}
