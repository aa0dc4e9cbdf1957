//! Server tags (Nova 2.26): short labels a user puts on a server and filters lists by.

use uuid::Uuid;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::Access;
use crate::model::Caller;

/// Nova's bound on the tags of one server.
pub const MAX_TAGS: usize = 50;
/// Nova's bound on one tag's length, in characters.
const MAX_TAG_LEN: usize = 60;

/// A tag as Nova accepts it: 1 to 60 characters, without `/` (it would end the URL's
/// segment) or `,` (the list filters' separator).
pub fn check_tag(tag: &str) -> Result<()> {
    let len = tag.chars().count();
    if len == 0 || len > MAX_TAG_LEN || tag.contains(['/', ',']) {
        return Err(Error::BadRequest(format!(
            "tag {tag:?} is invalid: a tag is 1 to {MAX_TAG_LEN} characters without '/' or ','"
        )));
    }
    Ok(())
}

/// Checks a whole set of tags and drops repeats, keeping the first of each.
pub fn check_tags(tags: Vec<String>) -> Result<Vec<String>> {
    let mut kept: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        check_tag(&tag)?;
        if !kept.contains(&tag) {
            kept.push(tag);
        }
    }
    if kept.len() > MAX_TAGS {
        return Err(Error::BadRequest(format!(
            "{} tags given; a server has at most {MAX_TAGS}",
            kept.len()
        )));
    }
    Ok(kept)
}

impl Core {
    /// Changes a server's tags in one write: `change` edits the list and says what to
    /// answer, or fails and leaves the server as it was.
    async fn server_tags_change<T: Send + 'static>(
        &self,
        caller: &Caller,
        id: &str,
        change: impl FnOnce(&mut Vec<String>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let id: Uuid = self.server_get(caller, id, Access::Write).await?.id;
        self.store
            .write(move |tx| {
                let mut server = tx
                    .server_get(id)?
                    .ok_or_else(|| Error::NotFound(format!("Instance {id} could not be found.")))?;
                let answer = change(&mut server.tags)?;
                if server.tags.len() > MAX_TAGS {
                    return Err(Error::BadRequest(format!(
                        "the server has {MAX_TAGS} tags already, the most it may have; \
                         delete one first"
                    )));
                }
                tx.server_update(&server)?;
                Ok(answer)
            })
            .await
    }

    /// `PUT /servers/{id}/tags`: replaces every tag; the new list.
    pub async fn server_tags_replace(
        &self,
        caller: &Caller,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>> {
        let tags = check_tags(tags)?;
        self.server_tags_change(caller, id, move |current| {
            current.clone_from(&tags);
            Ok(tags)
        })
        .await
    }

    /// `PUT /servers/{id}/tags/{tag}`: adds one; `true` if the server did not have it.
    pub async fn server_tag_add(&self, caller: &Caller, id: &str, tag: &str) -> Result<bool> {
        check_tag(tag)?;
        let tag = tag.to_string();
        self.server_tags_change(caller, id, move |current| {
            let new = !current.contains(&tag);
            if new {
                current.push(tag);
            }
            Ok(new)
        })
        .await
    }

    /// `DELETE /servers/{id}/tags/{tag}`: 404 if the server does not have it.
    pub async fn server_tag_delete(&self, caller: &Caller, id: &str, tag: &str) -> Result<()> {
        let tag = tag.to_string();
        self.server_tags_change(caller, id, move |current| {
            let before = current.len();
            current.retain(|t| *t != tag);
            if current.len() == before {
                return Err(Error::NotFound(format!(
                    "Tag '{tag}' could not be found on the server."
                )));
            }
            Ok(())
        })
        .await
    }

    /// `DELETE /servers/{id}/tags`: removes every tag.
    pub async fn server_tags_clear(&self, caller: &Caller, id: &str) -> Result<()> {
        self.server_tags_change(caller, id, |current| {
            current.clear();
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_and_repeats_dropped() {
        assert_eq!(
            check_tags(vec!["a".into(), "b".into(), "a".into()]).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        for bad in ["", "a/b", "a,b", &"x".repeat(61)] {
            assert!(check_tag(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(
            check_tag(&"é".repeat(60)).is_ok(),
            "the bound is in characters"
        );
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(check_tags(many).is_err());
    }
}
