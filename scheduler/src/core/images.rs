//! Images, Glance v2 (clause B.2.3): records, their data, members, tags and imports.
//!
//! The rules a user can observe:
//! - who sees an image: its owner project, everyone for `public` and `community`, the
//!   member projects for `shared` (any member status; listings show accepted members by
//!   default), every image for an administrator; anything else is a 404;
//! - who changes it: a member (or admin) of the owner project; a reader, or another
//!   project that can see it, gets a 403; only an administrator makes one public;
//! - data arrives once, into a `queued` image, by upload or web-download: `queued →
//!   saving|importing → active`, and on any failure back to `queued` with nothing left
//!   on disk. Every file is inspected with `qemu-img info`: the detected format must be
//!   the image's `disk_format`, and an image that refers to another file (a backing file,
//!   an external data file, a VMDK extent) is refused;
//! - JSON-patch updates: `replace` and `remove` only for a present attribute (409
//!   otherwise), as the standard says; `add` only for an absent one under the v2.0
//!   media type, while under v2.1 it sets the attribute either way, as Glance does and
//!   openstacksdk relies on; read-only and reserved attributes are 403, as in Glance.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Digest;
use yunji_common::execute::{ExecError, execute};

use super::Core;
use super::error::{Error, Result};
use super::policy::{Access, authorize, require_admin, require_project};
use crate::config::Config;
use crate::model::{
    CONTAINER_FORMATS, Caller, DISK_FORMATS, IMAGE_HASH_ALGO, Image, ImageMember, ImageQuery,
    ImageStatus, ImageTask, MemberStatus, TaskStatus, Visibility,
};
use crate::store::{Db, Store, StoreError};

/// Tags one image may carry (Glance's `image_tag_quota`).
pub const MAX_TAGS: usize = 128;
/// Additional properties one image may carry (Glance's `image_property_quota`).
pub const MAX_PROPERTIES: usize = 128;
/// Projects one image may be shared with (Glance's `image_member_quota`).
pub const MAX_MEMBERS: usize = 128;
/// The page size of a listing without `limit`, and the largest `limit` honoured.
pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 1000;
/// The import methods offered (`GET /v2/info/import`).
pub const IMPORT_METHODS: &[&str] = &["web-download"];

const MAX_STRING: usize = 255;
const MAX_PROPERTY_VALUE: usize = 65_535;
/// Redirects web-download follows, each checked like the first URL.
const MAX_REDIRECTS: usize = 5;

/// Attributes nobody sets (Glance's `_readonly_properties`, plus what this cloud keeps
/// to itself).
const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
    "stores",
    "locations",
];
/// Names Glance reserves.
const RESERVED: &[&str] = &["location", "deleted", "deleted_at"];
const RESERVED_PREFIX: &str = "os_glance";
/// Core attributes a user may change; everything else is an additional property.
const CORE: &[&str] = &[
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "architecture",
    "owner",
    "tags",
];

/// An image operation's failure: a core error, or a size limit or quota (413).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Core(#[from] Error),
    /// Over the image size cap, a quota, or the space left (413).
    #[error("{0}")]
    TooLarge(String),
}

impl From<StoreError> for ImageError {
    fn from(e: StoreError) -> Self {
        ImageError::Core(e.into())
    }
}

pub type ImageResult<T> = std::result::Result<T, ImageError>;

fn bad(message: impl Into<String>) -> ImageError {
    ImageError::Core(Error::BadRequest(message.into()))
}

fn conflict(message: impl Into<String>) -> ImageError {
    ImageError::Core(Error::Conflict(message.into()))
}

fn forbidden(message: impl Into<String>) -> ImageError {
    ImageError::Core(Error::Forbidden(message.into()))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no image with id {id} could be found"))
}

/// One operation of a JSON-patch update; `path` is the decoded pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchChange {
    pub op: PatchOp,
    pub path: Vec<String>,
    /// Absent for `remove`.
    pub value: Option<Value>,
}

/// Which JSON-patch media type an update used; they differ on `add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchDialect {
    /// `application/openstack-images-v2.1-json-patch`, RFC 6902 as Glance implements
    /// it: `add` sets a member whether or not it is there. openstacksdk sends `add`
    /// for every attribute it changes, so this is what `openstack image set` needs.
    V21,
    /// `application/openstack-images-v2.0-json-patch` (draft 4): `add` only for an
    /// absent attribute (409 otherwise), exactly as the standard's table B.33 says.
    V20,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Replace,
    Remove,
}

/// An image's data, for a download.
#[derive(Debug, Clone)]
pub enum ImageData {
    /// The image has no data yet (Glance answers 204).
    Empty,
    File {
        path: PathBuf,
        size: Option<i64>,
        checksum: Option<String>,
    },
}

/// `POST /v2/images/{id}/import`.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub method: String,
    pub uri: Option<String>,
}

/// How an attribute is being set: by a user creating or patching an image, or by the
/// cloud itself for a server snapshot (whose metadata are all strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Create,
    Patch,
    Snapshot,
}

/// The canonical (hyphenated, lower-case) form of an image id, or `None`.
fn canonical_id(id: &str) -> Option<String> {
    uuid::Uuid::try_parse(id)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

fn new_image(owner: &str) -> Image {
    let now = Utc::now();
    Image {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        name: None,
        owner: owner.to_string(),
        status: ImageStatus::Queued,
        // Glance's default since Ocata: like private until members are added.
        visibility: Visibility::Shared,
        protected: false,
        os_hidden: false,
        disk_format: None,
        container_format: None,
        min_ram: 0,
        min_disk: 0,
        size: None,
        virtual_size: None,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        architecture: None,
        tags: Vec::new(),
        properties: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    }
}

/// Data needs to know its formats first.
fn needs_formats(image: &Image) -> ImageResult<()> {
    if image.disk_format.is_none() || image.container_format.is_none() {
        return Err(bad(
            "set the image's disk_format and container_format (PATCH) before giving it data",
        ));
    }
    Ok(())
}

/// Whether `caller` may see `image` (see the module's rules).
fn visible(caller: &Caller, image: &Image, membership: Option<&ImageMember>) -> bool {
    caller.is_admin()
        || caller.project_id() == Some(image.owner.as_str())
        || matches!(image.visibility, Visibility::Public | Visibility::Community)
        || (image.visibility == Visibility::Shared && membership.is_some())
}

/// An image `caller` may see, with the caller's membership of it.
fn visible_image(
    db: &Db,
    caller: &Caller,
    id: &str,
) -> Result<Option<(Image, Option<ImageMember>)>> {
    let project = require_project(caller)?;
    let Some(key) = canonical_id(id) else {
        return Ok(None);
    };
    let Some(image) = db.image_get(&key)? else {
        return Ok(None);
    };
    // Only a shared image another project owns needs the membership to be seen.
    let membership = if image.visibility == Visibility::Shared && image.owner != project {
        db.image_member_get(&key, project)?
    } else {
        None
    };
    Ok(visible(caller, &image, membership.as_ref()).then_some((image, membership)))
}

/// The image a server boots from (`imageRef`): visible to the caller and active.
/// Runs inside the server create's transaction.
pub(crate) fn bootable_image(db: &Db, caller: &Caller, id: &str) -> Result<Image> {
    let (image, _) = visible_image(db, caller, id)?.ok_or_else(|| {
        Error::BadRequest(format!(
            "Can not find requested image {id}; GET /image/v2/images (openstack image list) lists the ones you may boot"
        ))
    })?;
    if image.status != ImageStatus::Active {
        return Err(Error::BadRequest(format!(
            "image {} is not active (status {}); boot from an active image",
            image.id,
            image.status.as_str()
        )));
    }
    Ok(image)
}

/// Whether `caller` may change `image`, which it can see.
fn check_change(caller: &Caller, image: &Image) -> Result<()> {
    if caller.is_admin() {
        return Ok(());
    }
    if caller.project_id() != Some(image.owner.as_str()) {
        return Err(Error::Forbidden(format!(
            "image {} belongs to another project; only its owner project (or an \
             administrator) may change it",
            image.id
        )));
    }
    authorize(
        caller,
        &image.owner,
        Access::Write,
        &format!("image {}", image.id),
    )
}

fn check_settable(key: &str) -> ImageResult<()> {
    if READ_ONLY.contains(&key) {
        return Err(forbidden(format!("Attribute '{key}' is read-only.")));
    }
    if RESERVED.contains(&key) || key.starts_with(RESERVED_PREFIX) {
        return Err(forbidden(format!("Attribute '{key}' is reserved.")));
    }
    Ok(())
}

fn string_or_null(key: &str, value: Value) -> ImageResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= MAX_STRING => Ok(Some(s)),
        _ => Err(bad(format!(
            "{key} must be a string of at most {MAX_STRING} characters, or null"
        ))),
    }
}

fn one_of(key: &str, value: Value, allowed: &[&str]) -> ImageResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        other => Err(bad(format!(
            "{key} {other} is not one of {}",
            allowed.join(", ")
        ))),
    }
}

fn boolean(key: &str, value: Value, how: Setting) -> ImageResult<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        Value::String(s) if how == Setting::Snapshot => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(bad(format!("{key} must be true or false, not {s:?}"))),
        },
        other => Err(bad(format!("{key} must be true or false, not {other}"))),
    }
}

fn count(key: &str, value: Value, how: Setting) -> ImageResult<i64> {
    let n = match &value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if how == Setting::Snapshot => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        _ => Err(bad(format!(
            "{key} must be a whole number from 0 to {}, not {value}",
            i32::MAX
        ))),
    }
}

fn validate_tag(tag: &str) -> ImageResult<()> {
    if tag.is_empty() || tag.chars().count() > MAX_STRING {
        return Err(bad(format!(
            "a tag must be 1 to {MAX_STRING} characters, not {tag:?}"
        )));
    }
    Ok(())
}

/// Sets tags, without repeats, within the quota.
fn set_tags(image: &mut Image, tags: Vec<String>) -> ImageResult<()> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        validate_tag(&tag)?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ImageError::TooLarge(format!(
            "an image may carry at most {MAX_TAGS} tags; this change would give it {}",
            out.len()
        )));
    }
    image.tags = out;
    Ok(())
}

/// Sets one attribute (core or additional) to a value from the user, checking its type
/// and the rules that go with it. Read-only and reserved names are checked before.
fn set_attribute(
    image: &mut Image,
    key: &str,
    value: Value,
    caller: &Caller,
    how: Setting,
) -> ImageResult<()> {
    match key {
        "name" => image.name = string_or_null(key, value)?,
        "disk_format" | "container_format" => {
            let allowed = if key == "disk_format" {
                DISK_FORMATS
            } else {
                CONTAINER_FORMATS
            };
            let new = one_of(key, value, allowed)?;
            let slot = if key == "disk_format" {
                &mut image.disk_format
            } else {
                &mut image.container_format
            };
            if how == Setting::Patch && image.status != ImageStatus::Queued && *slot != new {
                return Err(forbidden(format!(
                    "{key} can only be changed while the image is queued (it is {}): \
                     the data is already stored in its format",
                    image.status.as_str()
                )));
            }
            *slot = new;
        }
        "visibility" => {
            let v = match &value {
                Value::String(s) => Visibility::parse(s),
                _ => None,
            }
            .ok_or_else(|| {
                bad(format!(
                    "visibility {value} is not one of public, private, shared, community"
                ))
            })?;
            if v == Visibility::Public && !caller.is_admin() && image.visibility != v {
                return Err(forbidden(
                    "making an image public requires the admin role (Glance's \
                     publicize_image policy); use shared or community visibility, or ask \
                     an administrator",
                ));
            }
            image.visibility = v;
        }
        "protected" => image.protected = boolean(key, value, how)?,
        "os_hidden" => image.os_hidden = boolean(key, value, how)?,
        "min_ram" => image.min_ram = count(key, value, how)?,
        "min_disk" => image.min_disk = count(key, value, how)?,
        "architecture" => image.architecture = string_or_null(key, value)?,
        "owner" => {
            let owner = match value {
                Value::String(s) if !s.is_empty() && s.chars().count() <= MAX_STRING => s,
                other => {
                    return Err(bad(format!(
                        "owner must be a project id of 1 to {MAX_STRING} characters, not {other}"
                    )));
                }
            };
            if owner != image.owner && !caller.is_admin() {
                return Err(forbidden(
                    "only an administrator may give an image to another project (owner)",
                ));
            }
            image.owner = owner;
        }
        "tags" => {
            let tags = match value {
                Value::Array(items) => items
                    .into_iter()
                    .map(|t| match t {
                        Value::String(s) => Ok(s),
                        other => Err(bad(format!("tags must be strings, not {other}"))),
                    })
                    .collect::<ImageResult<Vec<_>>>()?,
                other => return Err(bad(format!("tags must be a list of strings, not {other}"))),
            };
            set_tags(image, tags)?;
        }
        _ => {
            if key.is_empty() || key.chars().count() > MAX_STRING {
                return Err(bad(format!(
                    "a property name must be 1 to {MAX_STRING} characters"
                )));
            }
            let value = match value {
                Value::String(s) => s,
                other if how == Setting::Snapshot => other.to_string(),
                other => {
                    return Err(bad(format!(
                        "property {key} must be a string, not {other} (additional \
                         properties are strings, as in Glance's image schema)"
                    )));
                }
            };
            if value.chars().count() > MAX_PROPERTY_VALUE {
                return Err(bad(format!(
                    "property {key} is longer than {MAX_PROPERTY_VALUE} characters"
                )));
            }
            image.properties.insert(key.to_string(), value);
            if image.properties.len() > MAX_PROPERTIES {
                return Err(ImageError::TooLarge(format!(
                    "an image may carry at most {MAX_PROPERTIES} additional properties"
                )));
            }
        }
    }
    Ok(())
}

/// Whether a core attribute counts as present for `add`: nullable ones when set, the
/// others always.
fn core_present(image: &Image, key: &str) -> bool {
    match key {
        "name" => image.name.is_some(),
        "disk_format" => image.disk_format.is_some(),
        "container_format" => image.container_format.is_some(),
        "architecture" => image.architecture.is_some(),
        _ => true,
    }
}

/// `add`, `replace` or `remove` of one element of `tags` (`/tags/N`, `/tags/-`).
fn patch_tag_element(image: &mut Image, change: PatchChange, index: &str) -> ImageResult<()> {
    let mut tags = image.tags.clone();
    let position = if index == "-" && change.op == PatchOp::Add {
        tags.len()
    } else {
        index
            .parse::<usize>()
            .map_err(|_| bad(format!("/tags/{index} is not a valid position in tags")))?
    };
    let limit = if change.op == PatchOp::Add {
        tags.len() + 1
    } else {
        tags.len()
    };
    if position >= limit {
        return Err(conflict(format!(
            "tags has {} elements; there is no position {index}",
            tags.len()
        )));
    }
    let value = || match &change.value {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(bad(format!(
            "a tag must be a string, not {}",
            other.clone().unwrap_or(Value::Null)
        ))),
    };
    match change.op {
        PatchOp::Add => tags.insert(position, value()?),
        PatchOp::Replace => tags[position] = value()?,
        PatchOp::Remove => {
            tags.remove(position);
        }
    }
    set_tags(image, tags)
}

/// Applies one change to `image` (a copy: a failing change leaves nothing applied).
fn apply_change(
    image: &mut Image,
    change: PatchChange,
    dialect: PatchDialect,
    caller: &Caller,
) -> ImageResult<()> {
    let pointer = format!("/{}", change.path.join("/"));
    let Some(root) = change.path.first().cloned() else {
        return Err(bad("a change's path must name an attribute, e.g. /name"));
    };
    check_settable(&root)?;
    match change.path.as_slice() {
        [_] => {}
        [tags, index] if tags == "tags" => {
            let index = index.clone();
            return patch_tag_element(image, change, &index);
        }
        _ => {
            return Err(bad(format!(
                "invalid JSON pointer for an image: {pointer}; only top-level attributes \
                 (and /tags/N) can be changed"
            )));
        }
    }
    let core = CORE.contains(&root.as_str());
    let present = if core {
        core_present(image, &root)
    } else {
        image.properties.contains_key(&root)
    };
    match change.op {
        PatchOp::Add | PatchOp::Replace => {
            if change.op == PatchOp::Add && present && dialect == PatchDialect::V20 {
                return Err(conflict(format!(
                    "Property {root} already present; use replace to change it"
                )));
            }
            if change.op == PatchOp::Replace && !core && !present {
                return Err(conflict(format!(
                    "Property {root} does not exist; use add to create it"
                )));
            }
            let value = change
                .value
                .ok_or_else(|| bad(format!("operation on {pointer} needs a value")))?;
            set_attribute(image, &root, value, caller, Setting::Patch)
        }
        PatchOp::Remove => {
            if root == "architecture" {
                if image.architecture.take().is_none() {
                    return Err(conflict("Property architecture does not exist"));
                }
                Ok(())
            } else if core {
                Err(forbidden(format!("Property {root} may not be removed.")))
            } else if image.properties.remove(&root).is_none() {
                Err(conflict(format!("Property {root} does not exist.")))
            } else {
                Ok(())
            }
        }
    }
}

// ---- inspecting data ----

#[derive(Debug, Deserialize)]
struct QemuInfo {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "backing-filename", default)]
    backing_filename: Option<String>,
    #[serde(rename = "full-backing-filename", default)]
    full_backing_filename: Option<String>,
    #[serde(rename = "format-specific", default)]
    format_specific: Option<Value>,
    #[serde(default)]
    children: Vec<QemuChild>,
}

#[derive(Debug, Deserialize)]
struct QemuChild {
    name: String,
}

/// The formats `qemu-img` reports for data of a `disk_format`.
fn qemu_formats(disk_format: &str) -> &'static [&'static str] {
    match disk_format {
        "raw" | "iso" | "ami" | "ari" | "aki" => &["raw"],
        "qcow2" => &["qcow2"],
        "vmdk" => &["vmdk"],
        "vdi" => &["vdi"],
        "vhd" => &["vpc"],
        "vhdx" => &["vhdx"],
        "ploop" => &["parallels"],
        _ => &[],
    }
}

/// Checks `qemu-img info` output for a file at `path` labelled `disk_format`; returns
/// the virtual size.
fn check_inspection(info: &QemuInfo, path: &Path, disk_format: &str) -> ImageResult<u64> {
    let flatten = "make it self-contained (qemu-img convert -O <format> in out) and \
                   upload it again";
    if let Some(backing) = info
        .full_backing_filename
        .as_ref()
        .or(info.backing_filename.as_ref())
    {
        return Err(bad(format!(
            "the image refers to a backing file ({backing}); images must not refer to \
             other files: {flatten}"
        )));
    }
    let data = info
        .format_specific
        .as_ref()
        .and_then(|f| f.get("data"))
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(file) = data.get("data-file") {
        return Err(bad(format!(
            "the image refers to an external data file ({}); images must not refer to \
             other files: {flatten}",
            file.as_str().unwrap_or("?")
        )));
    }
    if let Some(child) = info.children.iter().find(|c| c.name != "file") {
        return Err(bad(format!(
            "the image refers to another file ({}); images must not refer to other files: \
             {flatten}",
            child.name
        )));
    }
    if info.format == "vmdk" {
        let kind = data
            .get("create-type")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(kind, "monolithicSparse" | "streamOptimized") {
            return Err(bad(format!(
                "VMDK images must be monolithicSparse or streamOptimized, not {kind:?}: \
                 {flatten}"
            )));
        }
        let own = path.to_string_lossy();
        let extents = data.get("extents").and_then(Value::as_array);
        if extents.is_some_and(|list| {
            list.iter()
                .any(|e| e.get("filename").and_then(Value::as_str) != Some(own.as_ref()))
        }) {
            return Err(bad(format!(
                "the VMDK image has extents in other files: {flatten}"
            )));
        }
    }
    let expected = qemu_formats(disk_format);
    if !expected.contains(&info.format.as_str()) {
        let detected = match info.format.as_str() {
            "vpc" => "vhd",
            "parallels" => "ploop",
            other => other,
        };
        return Err(bad(format!(
            "the data is a {detected} image, but the image's disk_format is {disk_format}; \
             set disk_format to {detected} (PATCH the image while it is queued) or upload \
             {disk_format} data"
        )));
    }
    Ok(info.virtual_size)
}

/// Runs `qemu-img info` (memory- and CPU-limited, as Nova does) on an uploaded file.
async fn inspect(path: &Path, disk_format: &str, timeout: Duration) -> ImageResult<u64> {
    let shown = |s: &str| s.replace(&*path.to_string_lossy(), "the uploaded data");
    let out = execute(
        "prlimit",
        [
            "--as=1073741824".as_ref(),
            "--cpu=30".as_ref(),
            "--".as_ref(),
            "qemu-img".as_ref(),
            "info".as_ref(),
            "--output=json".as_ref(),
            path.as_os_str(),
        ],
        timeout,
    )
    .await;
    let out = match out {
        Ok(out) => out,
        Err(ExecError::Failed { stderr, .. }) => {
            return Err(bad(format!(
                "the data is not a disk image qemu-img can read: {}",
                shown(&stderr)
            )));
        }
        Err(ExecError::Timeout { secs, .. }) => {
            return Err(bad(format!(
                "inspecting the image took longer than {secs} s; it is refused"
            )));
        }
        Err(e @ ExecError::Spawn { .. }) => {
            return Err(Error::internal(
                anyhow::Error::new(e)
                    .context("cannot inspect image data: is qemu-img (qemu-utils) installed?"),
            )
            .into());
        }
    };
    let info: QemuInfo = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::internal(anyhow::anyhow!(
            "qemu-img info printed unexpected JSON: {e}"
        ))
    })?;
    check_inspection(&info, path, disk_format)
}

// ---- receiving data ----

/// What was stored: size and digests.
#[derive(Debug)]
struct Received {
    size: u64,
    md5: String,
    sha512: String,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn storage_error(e: std::io::Error, what: &str) -> ImageError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        ImageError::TooLarge("the image store is full; ask the operator for space".into())
    } else {
        Error::internal(anyhow::Error::new(e).context(what.to_string())).into()
    }
}

/// Streams `body` into `part`: the file is written and hashed on the blocking pool,
/// chunks handed over through a small bounded channel, so the image is never held in
/// memory and no async worker blocks. Stops at `cap` bytes.
async fn receive<S, E>(part: PathBuf, mut body: S, cap: u64) -> ImageResult<Received>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: Display,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<Received> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&part)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut md5 = md5::Md5::new();
        let mut sha512 = sha2::Sha512::new();
        let mut size = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            md5.update(&chunk);
            sha512.update(&chunk);
            out.write_all(&chunk)?;
            size += chunk.len() as u64;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(Received {
            size,
            md5: hex(&md5.finalize()),
            sha512: hex(&sha512.finalize()),
        })
    });
    let mut total = 0u64;
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                total += chunk.len() as u64;
                if total > cap {
                    failure = Some(ImageError::TooLarge(format!(
                        "the image is larger than this cloud accepts ({cap} bytes)"
                    )));
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is returned below
                }
            }
            Err(e) => {
                failure = Some(bad(format!(
                    "the data stopped arriving after {total} bytes: {e}"
                )));
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(Error::internal)?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    written.map_err(|e| storage_error(e, "writing image data"))
}

async fn remove_quietly(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(path = %path.display(), %error, "cannot remove image data"),
    }
}

/// What the image work that outlives a request needs: uploads run in their own task, so
/// a client that goes away mid-upload still leaves the image `queued` and no file.
#[derive(Clone)]
struct Worker {
    store: Store,
    config: Arc<Config>,
}

impl Worker {
    fn dir(&self) -> PathBuf {
        self.config.data_dir.join("images")
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir().join(id)
    }

    fn part(&self, id: &str) -> PathBuf {
        self.dir().join(format!("{id}.part"))
    }

    /// Receives, inspects and stores data for `image`, which the caller moved to `from`
    /// (`saving` or `importing`). On failure the image goes back to `queued` and no
    /// file is left.
    async fn fill<S, E>(
        &self,
        image: Image,
        body: S,
        declared: Option<u64>,
        from: ImageStatus,
    ) -> ImageResult<Image>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let id = image.id.clone();
        let (part, path) = (self.part(&id), self.path(&id));
        let result = self
            .fill_steps(image, body, declared, from, &part, &path)
            .await;
        if result.is_err() {
            remove_quietly(&part).await;
            remove_quietly(&path).await;
            let back = self
                .store
                .write(move |tx| tx.image_set_status(&id, from, ImageStatus::Queued, Utc::now()))
                .await;
            if let Err(error) = back {
                tracing::error!(%error, "cannot return a failed image to queued");
            }
        }
        result
    }

    async fn fill_steps<S, E>(
        &self,
        mut image: Image,
        body: S,
        declared: Option<u64>,
        from: ImageStatus,
        part: &Path,
        path: &Path,
    ) -> ImageResult<Image>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: Display,
    {
        tokio::fs::create_dir_all(self.dir())
            .await
            .map_err(|e| storage_error(e, "creating the image directory"))?;
        let received =
            receive(part.to_path_buf(), body, self.config.images.max_image_bytes).await?;
        if let Some(declared) = declared
            && declared != received.size
        {
            return Err(bad(format!(
                "received {} bytes, but the request announced {declared}",
                received.size
            )));
        }
        let disk_format = image.disk_format.clone().unwrap_or_default();
        let timeout = Duration::from_secs(self.config.images.inspect_timeout_secs);
        let virtual_size = inspect(part, &disk_format, timeout).await?;
        tokio::fs::rename(part, path)
            .await
            .map_err(|e| storage_error(e, "storing image data"))?;
        image.status = ImageStatus::Active;
        image.size = Some(received.size as i64);
        image.virtual_size = Some(virtual_size as i64);
        image.checksum = Some(received.md5);
        image.os_hash_algo = Some(IMAGE_HASH_ALGO.to_string());
        image.os_hash_value = Some(received.sha512);
        image.updated_at = Utc::now();
        let done = image.clone();
        if !self
            .store
            .write(move |tx| tx.image_set_data(from, &done))
            .await?
        {
            return Err(conflict(format!(
                "image {} was deleted while its data was being stored",
                image.id
            )));
        }
        Ok(image)
    }

    /// The background half of web-download.
    async fn web_download(self, image: Image, task_id: String, url: reqwest::Url) {
        let id = image.id.clone();
        let result = match fetch(&url, self.config.images.web_download_allow_private).await {
            Ok(response) => {
                let cap = self.config.images.max_image_bytes;
                if response.content_length().is_some_and(|n| n > cap) {
                    Err(ImageError::TooLarge(format!(
                        "the image is larger than this cloud accepts ({cap} bytes)"
                    )))
                } else {
                    let declared = response.content_length();
                    let body = futures_util::stream::unfold(response, |mut r| async move {
                        match r.chunk().await {
                            Ok(Some(chunk)) => Some((Ok(chunk), r)),
                            Ok(None) => None,
                            Err(e) => Some((Err(e), r)),
                        }
                    });
                    return self
                        .finish_import(
                            &task_id,
                            self.fill(image, Box::pin(body), declared, ImageStatus::Importing)
                                .await,
                        )
                        .await;
                }
            }
            Err(message) => Err(bad(message)),
        };
        // Failed before any data was stored: back to queued.
        let back = self
            .store
            .write(move |tx| {
                tx.image_set_status(&id, ImageStatus::Importing, ImageStatus::Queued, Utc::now())
            })
            .await;
        if let Err(error) = back {
            tracing::error!(%error, "cannot return a failed import to queued");
        }
        self.finish_import(&task_id, result).await;
    }

    async fn finish_import(&self, task_id: &str, result: ImageResult<Image>) {
        let (status, message) = match &result {
            Ok(_) => (TaskStatus::Success, String::new()),
            Err(e) => (TaskStatus::Failure, e.to_string()),
        };
        if let Err(error) = &result {
            tracing::warn!(task = task_id, %error, "image import failed");
        }
        let task_id = task_id.to_string();
        let saved = self
            .store
            .write(move |tx| tx.image_task_finish(&task_id, status, &message, Utc::now()))
            .await;
        if let Err(error) = saved {
            tracing::error!(%error, "cannot record the end of an image import");
        }
    }
}

/// Whether web-download may connect to `ip` without the operator's say-so.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b {
                let o = v6.octets();
                return is_public(IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15])));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Opens `url` for web-download, following redirects itself so that every hop's
/// address is checked (and the connection pinned to the checked address).
async fn fetch(
    url: &reqwest::Url,
    allow_private: bool,
) -> std::result::Result<reqwest::Response, String> {
    let mut url = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{url} is not an http or https URL"));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{url} has no port"))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!("yunji-image-import/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            let host = url
                .host_str()
                .ok_or_else(|| format!("{url} names no host"))?
                .to_string();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((bare, port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect(),
            };
            let first = *addrs
                .first()
                .ok_or_else(|| format!("{host} has no address"))?;
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(format!(
                    "{host} is at {}, a loopback, private or link-local address; \
                     web-download fetches from public addresses only (the operator may \
                     allow others with images.web_download_allow_private)",
                    bad.ip()
                ));
            }
            builder = builder.resolve(&host, first);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot prepare the download: {e}"))?;
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("fetching {url} failed: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{url} answered {status} without a Location"))?;
            url = url
                .join(location)
                .map_err(|e| format!("{url} redirected to an invalid URL: {e}"))?;
            continue;
        }
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        return Ok(response);
    }
    Err(format!("{url}: more than {MAX_REDIRECTS} redirects"))
}

impl Core {
    fn image_worker(&self) -> Worker {
        Worker {
            store: self.store.clone(),
            config: self.config.clone(),
        }
    }

    /// Where an image's data is stored (once it is active). Agents fetch it from here.
    pub fn image_path(&self, image: &Image) -> PathBuf {
        self.image_worker().path(&image.id)
    }

    /// `createImage` on a node with real disks: a consistent copy of the server's root
    /// disk (qcow2) becomes the new image's data, checked and hashed as an upload is.
    /// `Ok(None)` when the node's driver set has no disks (the sim set): the caller
    /// copies the image the server booted from instead.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn image_create_from_disk(
        &self,
        caller: &Caller,
        source: &Image,
        server_id: uuid::Uuid,
        owner_project: &str,
        node: &crate::model::Node,
        name: String,
        properties: Map<String, Value>,
    ) -> Result<Option<Image>> {
        authorize(caller, owner_project, Access::Write, "images")?;
        let snapshot_error = |e: ImageError| match e {
            ImageError::Core(e) => e,
            ImageError::TooLarge(m) => Error::BadRequest(m),
        };
        let mut image = new_image(owner_project);
        image.name = string_or_null("name", Value::String(name)).map_err(snapshot_error)?;
        image.visibility = Visibility::Private;
        image.container_format = source
            .container_format
            .clone()
            .or_else(|| Some("bare".into()));
        image.min_ram = source.min_ram;
        image.min_disk = source.min_disk;
        image.architecture = source.architecture.clone();
        for (key, value) in properties {
            check_settable(&key).map_err(snapshot_error)?;
            set_attribute(&mut image, &key, value, caller, Setting::Snapshot)
                .map_err(snapshot_error)?;
        }
        let Some(snapshot) = self
            .agents
            .snapshot_take(node, server_id)
            .await
            .map_err(Error::internal)?
        else {
            return Ok(None);
        };
        image.disk_format = Some(snapshot.disk_format.clone());
        image.status = ImageStatus::Saving;
        let worker = self.image_worker();
        tokio::fs::create_dir_all(worker.dir())
            .await
            .map_err(Error::internal)?;
        // Ends in .part: a restart's recovery removes it if we die holding it.
        let download = worker.dir().join(format!("{}.download.part", image.id));
        let fetched = self
            .agents
            .snapshot_fetch(node, &snapshot.name, &download)
            .await;
        if let Err(e) = fetched {
            remove_quietly(&download).await;
            return Err(Error::internal(e));
        }
        let stored = image.clone();
        if let Err(e) = self.store.write(move |tx| tx.image_insert(&stored)).await {
            remove_quietly(&download).await;
            return Err(e.into());
        }
        let filled = match tokio::fs::File::open(&download).await {
            Ok(file) => {
                let chunks = futures_util::stream::unfold(file, |mut file| async move {
                    use tokio::io::AsyncReadExt;
                    let mut buffer = bytes::BytesMut::with_capacity(1 << 20);
                    match file.read_buf(&mut buffer).await {
                        Ok(0) => None,
                        Ok(_) => Some((Ok(buffer.freeze()), file)),
                        Err(e) => Some((Err(e), file)),
                    }
                });
                worker
                    .fill(
                        image.clone(),
                        Box::pin(chunks),
                        Some(snapshot.size),
                        ImageStatus::Saving,
                    )
                    .await
            }
            Err(e) => Err(ImageError::Core(Error::internal(e))),
        };
        remove_quietly(&download).await;
        match filled {
            Ok(image) => Ok(Some(image)),
            Err(e) => {
                // Nothing half-made: the image the failed copy was for goes too.
                let id = image.id.clone();
                if let Err(error) = self.store.write(move |tx| tx.image_delete(&id)).await {
                    tracing::error!(%error, "cannot remove the image of a failed snapshot");
                }
                Err(snapshot_error(e))
            }
        }
    }

    /// Pushes the image a server boots from to its node, unless the node has it.
    pub(crate) async fn image_push_if_missing(
        &self,
        node: &crate::model::Node,
        image: Option<&yunji_common::agent_api::ImageSpec>,
    ) -> Result<()> {
        let Some(image) = image else {
            return Ok(());
        };
        if self
            .agents
            .image_present(node, &image.id)
            .await
            .map_err(Error::internal)?
        {
            return Ok(());
        }
        let push = yunji_common::agent_api::ImagePush {
            disk_format: image.disk_format.clone(),
            sha512: image.os_hash_value.clone(),
        };
        let file = self.image_worker().path(&image.id);
        tracing::info!(image = %image.id, node = %node.name, "pushing the image to the node");
        self.agents
            .image_push(node, &image.id, &push, &file)
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// An image with the caller's membership in it, if the caller may see it (404
    /// otherwise).
    async fn image_visible(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Image, Option<ImageMember>)> {
        let (key, caller_) = (id.to_string(), caller.clone());
        self.store
            .read_as(move |db| visible_image(db, &caller_, &key))
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// An image the caller may change.
    async fn image_changeable(&self, caller: &Caller, id: &str) -> Result<Image> {
        let (image, _) = self.image_visible(caller, id).await?;
        check_change(caller, &image)?;
        Ok(image)
    }

    /// `POST /v2/images`: a `queued` record from the request's attributes.
    pub async fn image_create(
        &self,
        caller: &Caller,
        attrs: Map<String, Value>,
    ) -> ImageResult<Image> {
        let project = require_project(caller)?.to_string();
        authorize(caller, &project, Access::Write, "images")?;
        let mut image = new_image(&project);
        for (key, value) in attrs {
            if key == "id" {
                let id = match &value {
                    Value::String(s) => canonical_id(s),
                    _ => None,
                };
                image.id = id.ok_or_else(|| {
                    bad(format!(
                        "id {value} is not a UUID like 8d5a5b8c-5d3c-4c8e-9a1e-2f0b5c4d3e2f"
                    ))
                })?;
                continue;
            }
            check_settable(&key)?;
            set_attribute(&mut image, &key, value, caller, Setting::Create)?;
        }
        let stored = image.clone();
        let id = image.id.clone();
        self.store
            .write(move |tx| tx.image_insert(&stored))
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => {
                    conflict(format!("an image with id {id} already exists"))
                }
                other => other.into(),
            })?;
        Ok(image)
    }

    /// `GET /v2/images/{id}`.
    pub async fn image_get(&self, caller: &Caller, id: &str) -> Result<Image> {
        Ok(self.image_visible(caller, id).await?.0)
    }

    /// `GET /v2/images`: one page of what the caller may see. The viewer in `query` is
    /// set here, from the caller.
    pub async fn images_list(&self, caller: &Caller, mut query: ImageQuery) -> Result<Vec<Image>> {
        let project = require_project(caller)?.to_string();
        query.viewer = if caller.is_admin() {
            None
        } else {
            Some(project)
        };
        query.limit = query.limit.min(MAX_PAGE);
        if let Some(marker) = &query.marker {
            let (image, _) = self
                .image_visible(caller, marker)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => Error::BadRequest(format!(
                        "marker {marker} is not an image you can see; page with the id of the \
                     last image of the previous page"
                    )),
                    other => other,
                })?;
            query.marker = Some(image.id);
        }
        let marker = query.marker.clone();
        self.store
            .read(move |db| db.images_list(&query))
            .await?
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "marker {} no longer exists",
                    marker.unwrap_or_default()
                ))
            })
    }

    /// `PATCH /v2/images/{id}`: every change applies, or none.
    pub async fn image_update(
        &self,
        caller: &Caller,
        id: &str,
        changes: Vec<PatchChange>,
        dialect: PatchDialect,
    ) -> ImageResult<Image> {
        let image = self.image_changeable(caller, id).await?;
        let caller = caller.clone();
        let image = self
            .store
            .write(move |tx| -> ImageResult<Image> {
                // Re-read inside the transaction, so concurrent updates do not interleave.
                let mut image = tx
                    .image_get(&image.id)?
                    .ok_or_else(|| not_found(&image.id))?;
                for change in changes {
                    apply_change(&mut image, change, dialect, &caller)?;
                }
                image.updated_at = Utc::now();
                tx.image_save_attributes(&image)?;
                Ok(image)
            })
            .await?;
        Ok(image)
    }

    /// `DELETE /v2/images/{id}`: refused while protected.
    pub async fn image_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let image = self.image_changeable(caller, id).await?;
        if image.protected {
            return Err(Error::Forbidden(format!(
                "image {} is protected; set protected to false (PATCH) before deleting it",
                image.id
            )));
        }
        let key = image.id.clone();
        self.store.write(move |tx| tx.image_delete(&key)).await?;
        remove_quietly(&self.image_path(&image)).await;
        Ok(())
    }

    /// `PUT /v2/images/{id}/file`: stores `body` as the image's data. `declared` is the
    /// size the client announced, if any.
    pub async fn image_upload<S, E>(
        &self,
        caller: &Caller,
        id: &str,
        body: S,
        declared: Option<u64>,
    ) -> ImageResult<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin + Send + 'static,
        E: Display + Send + 'static,
    {
        let image = self.image_changeable(caller, id).await?;
        needs_formats(&image)?;
        let cap = self.config.images.max_image_bytes;
        if declared.is_some_and(|n| n > cap) {
            return Err(ImageError::TooLarge(format!(
                "the image is larger than this cloud accepts ({cap} bytes)"
            )));
        }
        let image = self.image_claim(image, ImageStatus::Saving, None).await?;
        let worker = self.image_worker();
        tokio::spawn(async move {
            worker
                .fill(image, body, declared, ImageStatus::Saving)
                .await
        })
        .await
        .map_err(Error::internal)??;
        Ok(())
    }

    /// Moves a queued image to `to` (`saving` or `importing`), recording `task` in the
    /// same transaction; the one gate that makes data arrive once.
    async fn image_claim(
        &self,
        image: Image,
        to: ImageStatus,
        task: Option<ImageTask>,
    ) -> ImageResult<Image> {
        needs_formats(&image)?;
        let refuse = |status: ImageStatus| {
            conflict(format!(
                "image {} is {}; data can only be given to a queued image (create a new \
                 image for new data)",
                image.id,
                status.as_str()
            ))
        };
        if image.status != ImageStatus::Queued {
            return Err(refuse(image.status));
        }
        let key = image.id.clone();
        let claimed = self
            .store
            .write(move |tx| -> ImageResult<Option<Image>> {
                if !tx.image_set_status(&key, ImageStatus::Queued, to, Utc::now())? {
                    return Ok(tx.image_get(&key)?);
                }
                if let Some(task) = &task {
                    tx.image_task_insert(task)?;
                }
                Ok(None)
            })
            .await?;
        match claimed {
            None => Ok(Image {
                status: to,
                ..image
            }),
            Some(now) => Err(refuse(now.status)),
        }
    }

    /// `GET /v2/images/{id}/file`.
    pub async fn image_download(&self, caller: &Caller, id: &str) -> Result<ImageData> {
        let (image, _) = self.image_visible(caller, id).await?;
        match image.status {
            ImageStatus::Active => Ok(ImageData::File {
                path: self.image_path(&image),
                size: image.size,
                checksum: image.checksum,
            }),
            ImageStatus::Deactivated if !caller.is_admin() => Err(Error::Forbidden(format!(
                "image {} has been deactivated by an administrator; its data cannot be \
                 downloaded",
                image.id
            ))),
            ImageStatus::Deactivated => Ok(ImageData::File {
                path: self.image_path(&image),
                size: image.size,
                checksum: image.checksum,
            }),
            ImageStatus::Queued | ImageStatus::Saving | ImageStatus::Importing => {
                Ok(ImageData::Empty)
            }
        }
    }

    /// `POST /v2/images/{id}/import`: starts a web-download in the background (202).
    pub async fn image_import(
        &self,
        caller: &Caller,
        id: &str,
        request: ImportRequest,
    ) -> ImageResult<()> {
        let image = self.image_changeable(caller, id).await?;
        if !IMPORT_METHODS.contains(&request.method.as_str()) {
            return Err(bad(format!(
                "import method {:?} is not offered here; use web-download (GET \
                 /v2/info/import lists the methods), or upload with PUT /v2/images/{}/file",
                request.method, image.id
            )));
        }
        let uri = request
            .uri
            .ok_or_else(|| bad("web-download needs method.uri, the http(s) URL to import from"))?;
        let url = reqwest::Url::parse(&uri)
            .map_err(|e| bad(format!("method.uri {uri:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad(format!(
                "method.uri {uri:?} must be an http or https URL with a host"
            )));
        }
        let now = Utc::now();
        let task = ImageTask {
            id: uuid::Uuid::new_v4().hyphenated().to_string(),
            image_id: image.id.clone(),
            owner: image.owner.clone(),
            user_id: caller.user_id.clone(),
            status: TaskStatus::Processing,
            method: request.method,
            uri,
            message: String::new(),
            created_at: now,
            updated_at: now,
        };
        let task_id = task.id.clone();
        let image = self
            .image_claim(image, ImageStatus::Importing, Some(task))
            .await?;
        tokio::spawn(self.image_worker().web_download(image, task_id, url));
        Ok(())
    }

    /// `GET /v2/images/{id}/tasks`: the image's imports.
    pub async fn image_tasks(&self, caller: &Caller, id: &str) -> Result<Vec<ImageTask>> {
        let (image, _) = self.image_visible(caller, id).await?;
        if !caller.is_admin() && caller.project_id() != Some(image.owner.as_str()) {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .read(move |db| db.image_tasks_list(&image.id))
            .await?)
    }

    /// `GET /v2/tasks`: the caller's project's import tasks (every project's for an
    /// administrator).
    pub async fn image_tasks_list(&self, caller: &Caller) -> Result<Vec<ImageTask>> {
        let project = require_project(caller)?.to_string();
        let owner = (!caller.is_admin()).then_some(project);
        Ok(self
            .store
            .read(move |db| db.image_tasks_of(owner.as_deref()))
            .await?)
    }

    /// `GET /v2/tasks/{id}`.
    pub async fn image_task_get(&self, caller: &Caller, id: &str) -> Result<ImageTask> {
        let project = require_project(caller)?.to_string();
        let key = id.to_string();
        let task = self.store.read(move |db| db.image_task_get(&key)).await?;
        task.filter(|t| caller.is_admin() || t.owner == project)
            .ok_or_else(|| Error::NotFound(format!("no task with id {id} could be found")))
    }

    /// `PUT /v2/images/{id}/tags/{tag}` (a tag already there is fine).
    pub async fn image_tag_add(&self, caller: &Caller, id: &str, tag: &str) -> ImageResult<()> {
        validate_tag(tag)?;
        let image = self.image_changeable(caller, id).await?;
        let tag = tag.to_string();
        self.store
            .write(move |tx| -> ImageResult<()> {
                let mut image = tx
                    .image_get(&image.id)?
                    .ok_or_else(|| not_found(&image.id))?;
                if image.tags.contains(&tag) {
                    return Ok(());
                }
                let mut tags = image.tags.clone();
                tags.push(tag);
                set_tags(&mut image, tags)?;
                image.updated_at = Utc::now();
                tx.image_save_attributes(&image)?;
                Ok(())
            })
            .await
    }

    /// `DELETE /v2/images/{id}/tags/{tag}`.
    pub async fn image_tag_delete(&self, caller: &Caller, id: &str, tag: &str) -> Result<()> {
        let image = self.image_changeable(caller, id).await?;
        let tag = tag.to_string();
        self.store
            .write(move |tx| -> Result<()> {
                let mut image = tx
                    .image_get(&image.id)?
                    .ok_or_else(|| not_found(&image.id))?;
                let before = image.tags.len();
                image.tags.retain(|t| *t != tag);
                if image.tags.len() == before {
                    return Err(Error::NotFound(format!(
                        "image {} has no tag {tag:?}",
                        image.id
                    )));
                }
                image.updated_at = Utc::now();
                tx.image_save_attributes(&image)?;
                Ok(())
            })
            .await
    }

    /// The image for member operations: visible, and shared.
    async fn image_shared(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Image, Option<ImageMember>)> {
        let (image, membership) = self.image_visible(caller, id).await?;
        if image.visibility != Visibility::Shared {
            return Err(Error::Forbidden(format!(
                "Only shared images have members: image {} is {}; set its visibility to \
                 shared first",
                image.id,
                image.visibility.as_str()
            )));
        }
        Ok((image, membership))
    }

    fn is_owner_or_admin(caller: &Caller, image: &Image) -> bool {
        caller.is_admin() || caller.project_id() == Some(image.owner.as_str())
    }

    /// `GET /v2/images/{id}/members`: all of them for the owner, its own for a member.
    pub async fn image_members_list(&self, caller: &Caller, id: &str) -> Result<Vec<ImageMember>> {
        let (image, membership) = self.image_shared(caller, id).await?;
        if Self::is_owner_or_admin(caller, &image) {
            Ok(self
                .store
                .read(move |db| db.image_members_list(&image.id))
                .await?)
        } else {
            Ok(membership.into_iter().collect())
        }
    }

    /// `GET /v2/images/{id}/members/{member}`.
    pub async fn image_member_get(
        &self,
        caller: &Caller,
        id: &str,
        member_id: &str,
    ) -> Result<ImageMember> {
        let (image, membership) = self.image_shared(caller, id).await?;
        let missing = || {
            Error::NotFound(format!(
                "project {member_id} is not a member of image {}",
                image.id
            ))
        };
        if Self::is_owner_or_admin(caller, &image) {
            let (key, member) = (image.id.clone(), member_id.to_string());
            return self
                .store
                .read(move |db| db.image_member_get(&key, &member))
                .await?
                .ok_or_else(missing);
        }
        membership
            .filter(|m| m.member_id == member_id)
            .ok_or_else(missing)
    }

    /// `POST /v2/images/{id}/members`: shares the image with a project (pending).
    pub async fn image_member_create(
        &self,
        caller: &Caller,
        id: &str,
        member_id: &str,
    ) -> ImageResult<ImageMember> {
        let (image, _) = self.image_shared(caller, id).await?;
        check_change(caller, &image)?;
        let now = Utc::now();
        let member = ImageMember {
            image_id: image.id.clone(),
            member_id: member_id.to_string(),
            status: MemberStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        let stored = member.clone();
        self.store
            .write(move |tx| -> ImageResult<()> {
                if tx.project_get(&stored.member_id)?.is_none() {
                    return Err(bad(format!(
                        "project {} does not exist; members are named by project id",
                        stored.member_id
                    )));
                }
                if tx
                    .image_member_get(&stored.image_id, &stored.member_id)?
                    .is_some()
                {
                    return Err(conflict(format!(
                        "project {} is already a member of image {}",
                        stored.member_id, stored.image_id
                    )));
                }
                if tx.image_members_count(&stored.image_id)? >= MAX_MEMBERS {
                    return Err(ImageError::TooLarge(format!(
                        "an image may be shared with at most {MAX_MEMBERS} projects"
                    )));
                }
                tx.image_member_insert(&stored)?;
                Ok(())
            })
            .await?;
        Ok(member)
    }

    /// `PUT /v2/images/{id}/members/{member}`: the member project accepts or rejects.
    pub async fn image_member_update(
        &self,
        caller: &Caller,
        id: &str,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<ImageMember> {
        let (image, _) = self.image_shared(caller, id).await?;
        let current = self.image_member_get(caller, &image.id, member_id).await?;
        if !caller.is_admin() {
            if caller.project_id() != Some(member_id) {
                return Err(Error::Forbidden(format!(
                    "only project {member_id} itself may accept or reject image {}",
                    image.id
                )));
            }
            authorize(
                caller,
                member_id,
                Access::Write,
                &format!("its membership of image {}", image.id),
            )?;
        }
        let now = Utc::now();
        let (key, member) = (image.id.clone(), member_id.to_string());
        self.store
            .write(move |tx| tx.image_member_set_status(&key, &member, status, now))
            .await?;
        Ok(ImageMember {
            status,
            updated_at: now,
            ..current
        })
    }

    /// `DELETE /v2/images/{id}/members/{member}`: the owner stops sharing.
    pub async fn image_member_delete(
        &self,
        caller: &Caller,
        id: &str,
        member_id: &str,
    ) -> Result<()> {
        let (image, _) = self.image_shared(caller, id).await?;
        let member = self.image_member_get(caller, &image.id, member_id).await?;
        check_change(caller, &image)?;
        self.store
            .write(move |tx| tx.image_member_delete(&member.image_id, &member.member_id))
            .await?;
        Ok(())
    }

    /// `POST /v2/images/{id}/actions/deactivate|reactivate` (administrators).
    pub async fn image_set_active(&self, caller: &Caller, id: &str, active: bool) -> Result<()> {
        require_admin(
            caller,
            if active {
                "reactivating an image"
            } else {
                "deactivating an image"
            },
        )?;
        let (image, _) = self.image_visible(caller, id).await?;
        let (from, to) = if active {
            (ImageStatus::Deactivated, ImageStatus::Active)
        } else {
            (ImageStatus::Active, ImageStatus::Deactivated)
        };
        if image.status == to {
            return Ok(());
        }
        let key = image.id.clone();
        if !self
            .store
            .write(move |tx| tx.image_set_status(&key, from, to, Utc::now()))
            .await?
        {
            return Err(Error::Conflict(format!(
                "image {} is {}; only an {} image can be {}",
                image.id,
                image.status.as_str(),
                from.as_str(),
                if active { "reactivated" } else { "deactivated" }
            )));
        }
        Ok(())
    }

    /// For the compute service: an active image the caller may boot from.
    /// An image to boot or make a volume from: see [`bootable_image`].
    pub async fn image_for_boot(&self, caller: &Caller, id: &str) -> Result<Image> {
        let (caller, key) = (caller.clone(), id.to_string());
        self.store
            .read_as(move |db| bootable_image(db, &caller, &key))
            .await
    }

    /// For the compute service (Nova's `createImage`): a new active, private image
    /// owned by `owner_project` whose data is a copy of `source`'s, with its formats and
    /// checksums, and `properties` applied (core attributes by name, the rest as
    /// additional properties; string values are accepted for numbers and booleans).
    pub async fn image_create_from(
        &self,
        caller: &Caller,
        source: &Image,
        owner_project: &str,
        name: String,
        properties: Map<String, Value>,
    ) -> Result<Image> {
        authorize(caller, owner_project, Access::Write, "images")?;
        if source.status != ImageStatus::Active {
            return Err(Error::Conflict(format!(
                "image {} is not active (status {}); its data cannot be copied",
                source.id,
                source.status.as_str()
            )));
        }
        let snapshot_error = |e: ImageError| match e {
            ImageError::Core(e) => e,
            ImageError::TooLarge(m) => Error::BadRequest(m),
        };
        let mut image = new_image(owner_project);
        image.name = string_or_null("name", Value::String(name)).map_err(snapshot_error)?;
        image.visibility = Visibility::Private;
        image.disk_format = source.disk_format.clone();
        image.container_format = source.container_format.clone();
        image.min_ram = source.min_ram;
        image.min_disk = source.min_disk;
        image.architecture = source.architecture.clone();
        for (key, value) in properties {
            check_settable(&key).map_err(snapshot_error)?;
            set_attribute(&mut image, &key, value, caller, Setting::Snapshot)
                .map_err(snapshot_error)?;
        }
        if image.disk_format != source.disk_format
            || image.container_format != source.container_format
        {
            return Err(Error::BadRequest(format!(
                "the new image's data is a copy of image {}, so its disk_format and \
                 container_format stay {} and {}",
                source.id,
                source.disk_format.as_deref().unwrap_or("unset"),
                source.container_format.as_deref().unwrap_or("unset"),
            )));
        }
        image.status = ImageStatus::Active;
        image.size = source.size;
        image.virtual_size = source.virtual_size;
        image.checksum = source.checksum.clone();
        image.os_hash_algo = source.os_hash_algo.clone();
        image.os_hash_value = source.os_hash_value.clone();

        let worker = self.image_worker();
        let (from, part, path) = (
            worker.path(&source.id),
            worker.part(&image.id),
            worker.path(&image.id),
        );
        // Data files never change once stored, so a hard link is a copy; a real copy
        // (on the blocking pool) when the link cannot be made.
        let copied = tokio::task::spawn_blocking({
            let (from, part, path) = (from.clone(), part.clone(), path.clone());
            move || -> std::io::Result<()> {
                if std::fs::hard_link(&from, &path).is_ok() {
                    return Ok(());
                }
                std::fs::copy(&from, &part)?;
                std::fs::File::open(&part)?.sync_all()?;
                std::fs::rename(&part, &path)
            }
        })
        .await
        .map_err(Error::internal)?;
        if let Err(e) = copied {
            remove_quietly(&part).await;
            return Err(Error::internal(anyhow::Error::new(e).context(format!(
                "copying the data of image {} ({})",
                source.id,
                from.display()
            ))));
        }
        let stored = image.clone();
        if let Err(e) = self.store.write(move |tx| tx.image_insert(&stored)).await {
            remove_quietly(&path).await;
            return Err(e.into());
        }
        Ok(image)
    }

    /// At start-up: uploads and imports cut short by a restart go back to `queued`, and
    /// their partial files are removed. The server calls this once before serving.
    pub async fn images_recover(&self) -> Result<()> {
        let ids = self
            .store
            .write(|tx| tx.images_recover("interrupted by a restart of the scheduler", Utc::now()))
            .await?;
        let worker = self.image_worker();
        for id in &ids {
            tracing::warn!(image = %id, "an upload or import was interrupted; the image is queued again");
            remove_quietly(&worker.path(id)).await;
        }
        let mut entries = match tokio::fs::read_dir(worker.dir()).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::internal(e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(Error::internal)? {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                remove_quietly(&entry.path()).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(project: &str, role: &str) -> Caller {
        crate::model::test_caller(project, &[role])
    }

    /// The strict dialect (v2.0), where `add` is only for absent attributes.
    fn apply(image: &mut Image, c: PatchChange, caller: &Caller) -> ImageResult<()> {
        apply_change(image, c, PatchDialect::V20, caller)
    }

    fn change(op: PatchOp, path: &str, value: Option<Value>) -> PatchChange {
        PatchChange {
            op,
            path: path
                .trim_start_matches('/')
                .split('/')
                .map(String::from)
                .collect(),
            value,
        }
    }

    fn status(e: ImageError) -> &'static str {
        match e {
            ImageError::Core(Error::BadRequest(_)) => "400",
            ImageError::Core(Error::Forbidden(_)) => "403",
            ImageError::Core(Error::NotFound(_)) => "404",
            ImageError::Core(Error::Conflict(_)) => "409",
            ImageError::TooLarge(_) => "413",
            _ => "other",
        }
    }

    #[test]
    fn add_is_for_absent_attributes_and_replace_remove_for_present_ones() {
        let member = caller("p", "member");
        let mut image = new_image("p");
        let json = |v: &str| Some(Value::String(v.into()));
        apply(
            &mut image,
            change(PatchOp::Add, "/name", json("a")),
            &member,
        )
        .unwrap();
        apply(
            &mut image,
            change(PatchOp::Add, "/os_distro", json("x")),
            &member,
        )
        .unwrap();
        let again = apply(
            &mut image,
            change(PatchOp::Add, "/os_distro", json("y")),
            &member,
        );
        assert_eq!(status(again.unwrap_err()), "409");
        let name_again = apply(
            &mut image,
            change(PatchOp::Add, "/name", json("b")),
            &member,
        );
        assert_eq!(status(name_again.unwrap_err()), "409");
        let absent = apply(
            &mut image,
            change(PatchOp::Replace, "/nope", json("y")),
            &member,
        );
        assert_eq!(status(absent.unwrap_err()), "409");
        let gone = apply(&mut image, change(PatchOp::Remove, "/nope", None), &member);
        assert_eq!(status(gone.unwrap_err()), "409");
        apply(
            &mut image,
            change(PatchOp::Replace, "/os_distro", json("z")),
            &member,
        )
        .unwrap();
        assert_eq!(image.properties["os_distro"], "z");
        apply(
            &mut image,
            change(PatchOp::Remove, "/os_distro", None),
            &member,
        )
        .unwrap();
        assert!(image.properties.is_empty());
        let core = apply(&mut image, change(PatchOp::Remove, "/name", None), &member);
        assert_eq!(status(core.unwrap_err()), "403");
    }

    #[test]
    fn add_sets_present_attributes_in_the_v21_dialect() {
        let member = caller("p", "member");
        let mut image = new_image("p");
        let json = |v: &str| Some(Value::String(v.into()));
        for value in ["a", "b"] {
            apply_change(
                &mut image,
                change(PatchOp::Add, "/name", json(value)),
                PatchDialect::V21,
                &member,
            )
            .unwrap();
            apply_change(
                &mut image,
                change(PatchOp::Add, "/os_distro", json(value)),
                PatchDialect::V21,
                &member,
            )
            .unwrap();
        }
        assert_eq!(image.name.as_deref(), Some("b"));
        assert_eq!(image.properties["os_distro"], "b");
        let absent = apply_change(
            &mut image,
            change(PatchOp::Replace, "/nope", json("x")),
            PatchDialect::V21,
            &member,
        );
        assert_eq!(status(absent.unwrap_err()), "409");
    }

    #[test]
    fn read_only_reserved_and_public_are_forbidden_to_members() {
        let member = caller("p", "member");
        let mut image = new_image("p");
        for path in [
            "/status",
            "/checksum",
            "/id",
            "/size",
            "/deleted",
            "/os_glance_x",
            "/locations",
        ] {
            let r = apply(
                &mut image,
                change(PatchOp::Replace, path, Some(Value::String("x".into()))),
                &member,
            );
            assert_eq!(status(r.unwrap_err()), "403", "{path}");
        }
        let public = apply(
            &mut image,
            change(
                PatchOp::Replace,
                "/visibility",
                Some(Value::String("public".into())),
            ),
            &member,
        );
        assert_eq!(status(public.unwrap_err()), "403");
        let admin = caller("p", "admin");
        apply(
            &mut image,
            change(
                PatchOp::Replace,
                "/visibility",
                Some(Value::String("public".into())),
            ),
            &admin,
        )
        .unwrap();
        assert_eq!(image.visibility, Visibility::Public);
    }

    #[test]
    fn values_are_type_checked() {
        let member = caller("p", "member");
        let mut image = new_image("p");
        for (path, value) in [
            ("/min_ram", Value::String("1".into())),
            ("/min_disk", Value::from(-1)),
            ("/protected", Value::String("yes".into())),
            ("/disk_format", Value::String("exe".into())),
            ("/custom", Value::from(3)),
            ("/tags", Value::from(3)),
        ] {
            let r = apply(
                &mut image,
                change(PatchOp::Replace, path, Some(value)),
                &member,
            );
            assert_eq!(
                status(r.unwrap_err()),
                if path == "/custom" { "409" } else { "400" },
                "{path}"
            );
        }
        let r = apply(
            &mut image,
            change(PatchOp::Add, "/custom", Some(Value::from(3))),
            &member,
        );
        assert_eq!(status(r.unwrap_err()), "400");
    }

    #[test]
    fn tag_elements_follow_json_patch_arrays() {
        let member = caller("p", "member");
        let mut image = new_image("p");
        let tag = |t: &str| Some(Value::String(t.into()));
        apply(
            &mut image,
            change(PatchOp::Add, "/tags/0", tag("a")),
            &member,
        )
        .unwrap();
        apply(
            &mut image,
            change(PatchOp::Add, "/tags/-", tag("b")),
            &member,
        )
        .unwrap();
        apply(
            &mut image,
            change(PatchOp::Add, "/tags/1", tag("a")),
            &member,
        )
        .unwrap();
        assert_eq!(image.tags, ["a", "b"]);
        apply(
            &mut image,
            change(PatchOp::Remove, "/tags/0", None),
            &member,
        )
        .unwrap();
        assert_eq!(image.tags, ["b"]);
        let far = apply(
            &mut image,
            change(PatchOp::Remove, "/tags/5", None),
            &member,
        );
        assert_eq!(status(far.unwrap_err()), "409");
        let deep = apply(
            &mut image,
            change(PatchOp::Add, "/name/x", tag("a")),
            &member,
        );
        assert_eq!(status(deep.unwrap_err()), "400");
    }

    fn info(json: Value) -> QemuInfo {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn inspection_refuses_other_files_and_mismatched_formats() {
        let path = Path::new("/data/images/x.part");
        let ok = info(
            serde_json::json!({"format": "qcow2", "virtual-size": 1048576,
            "children": [{"name": "file", "info": {}}]}),
        );
        assert_eq!(check_inspection(&ok, path, "qcow2").unwrap(), 1_048_576);
        assert_eq!(
            status(check_inspection(&ok, path, "raw").unwrap_err()),
            "400"
        );
        let backing = info(serde_json::json!({"format": "qcow2", "virtual-size": 1,
            "backing-filename": "/etc/passwd"}));
        assert_eq!(
            status(check_inspection(&backing, path, "qcow2").unwrap_err()),
            "400"
        );
        let data_file = info(serde_json::json!({"format": "qcow2", "virtual-size": 1,
            "format-specific": {"type": "qcow2", "data": {"data-file": "/etc/shadow"}}}));
        assert_eq!(
            status(check_inspection(&data_file, path, "qcow2").unwrap_err()),
            "400"
        );
        let vmdk = info(serde_json::json!({"format": "vmdk", "virtual-size": 1,
            "format-specific": {"type": "vmdk", "data": {"create-type": "monolithicFlat",
            "extents": [{"filename": "/etc/shadow"}]}}}));
        assert_eq!(
            status(check_inspection(&vmdk, path, "vmdk").unwrap_err()),
            "400"
        );
        let vhd = info(serde_json::json!({"format": "vpc", "virtual-size": 1}));
        assert!(check_inspection(&vhd, path, "vhd").is_ok());
        let iso = info(serde_json::json!({"format": "raw", "virtual-size": 1}));
        assert!(check_inspection(&iso, path, "iso").is_ok());
    }

    #[test]
    fn only_public_addresses_are_fetched_by_default() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "192.168.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "2606:4700::1111", "151.101.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
