//! Images (Glance v2): the image record, its members (the projects it is shared with),
//! the import tasks that fill it from a URL, and what a listing asks for.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Where an image is in its life. Glance's other states (`killed`, `deleted`,
/// `pending_delete`, `uploading`) never occur here: a failed upload goes back to
/// `queued`, and a deleted image is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    /// A record without data; data may be uploaded or imported.
    Queued,
    /// Data is being uploaded.
    Saving,
    /// Data is being imported (web-download).
    Importing,
    Active,
    /// An administrator has blocked its data (downloads and boots).
    Deactivated,
}

impl ImageStatus {
    pub const ALL: [ImageStatus; 5] = [
        ImageStatus::Queued,
        ImageStatus::Saving,
        ImageStatus::Importing,
        ImageStatus::Active,
        ImageStatus::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Saving => "saving",
            ImageStatus::Importing => "importing",
            ImageStatus::Active => "active",
            ImageStatus::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<ImageStatus> {
        ImageStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Who may see an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everyone; only administrators may make an image public.
    Public,
    /// The owner project only.
    Private,
    /// The owner and the projects it was shared with (members).
    Shared,
    /// Everyone may use it, but it is listed only on request (`visibility=community`).
    Community,
}

impl Visibility {
    pub const ALL: [Visibility; 4] = [
        Visibility::Public,
        Visibility::Private,
        Visibility::Shared,
        Visibility::Community,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        Visibility::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The disk formats Glance knows.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];

/// The container formats Glance knows.
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

/// The hash recorded in `os_hash_value`.
pub const IMAGE_HASH_ALGO: &str = "sha512";

/// An image record. Core attributes are fields; everything else a user set is in
/// `properties` (Glance's "additional properties", always strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// A UUID in its hyphenated form, as Glance's ids are.
    pub id: String,
    pub name: Option<String>,
    /// The owning project's id.
    pub owner: String,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    /// MB of RAM needed to boot it.
    pub min_ram: i64,
    /// GB of disk needed to boot it.
    pub min_disk: i64,
    /// Bytes of data; set once data is stored.
    pub size: Option<i64>,
    /// Bytes the disk holds, as `qemu-img info` reports it.
    pub virtual_size: Option<i64>,
    /// MD5 of the data, hex.
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub architecture: Option<String>,
    /// In the order added, without repeats.
    pub tags: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project's answer to an image shared with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub const ALL: [MemberStatus; 3] = [
        MemberStatus::Pending,
        MemberStatus::Accepted,
        MemberStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<MemberStatus> {
        MemberStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A project an image is shared with.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageMember {
    pub image_id: String,
    /// The project's id.
    pub member_id: String,
    pub status: MemberStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Processing,
    Success,
    Failure,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Processing => "processing",
            TaskStatus::Success => "success",
            TaskStatus::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Processing,
            TaskStatus::Success,
            TaskStatus::Failure,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One import of data into an image (Glance's `api_image_import` task).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTask {
    pub id: String,
    pub image_id: String,
    pub owner: String,
    pub user_id: String,
    pub status: TaskStatus,
    /// The import method, e.g. `web-download`.
    pub method: String,
    /// The URL imported from.
    pub uri: String,
    /// Why it failed, for the user.
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Keys an image listing may be sorted by (Glance's `_available_sort_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    Id,
    CreatedAt,
    UpdatedAt,
}

impl ImageSortKey {
    pub const ALL: [ImageSortKey; 8] = [
        ImageSortKey::Name,
        ImageSortKey::Status,
        ImageSortKey::ContainerFormat,
        ImageSortKey::DiskFormat,
        ImageSortKey::Size,
        ImageSortKey::Id,
        ImageSortKey::CreatedAt,
        ImageSortKey::UpdatedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImageSortKey::Name => "name",
            ImageSortKey::Status => "status",
            ImageSortKey::ContainerFormat => "container_format",
            ImageSortKey::DiskFormat => "disk_format",
            ImageSortKey::Size => "size",
            ImageSortKey::Id => "id",
            ImageSortKey::CreatedAt => "created_at",
            ImageSortKey::UpdatedAt => "updated_at",
        }
    }

    pub fn parse(s: &str) -> Option<ImageSortKey> {
        ImageSortKey::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Which images a listing may show, by visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// Public, the viewer's own, and shared ones it is a member of (not community).
    Default,
    /// Everything the viewer may see, community images included.
    All,
    Only(Visibility),
}

/// What an image listing asks for; each `None` or empty list matches everything.
#[derive(Debug, Clone)]
pub struct ImageQuery {
    /// The viewing project; `None` for an administrator, who sees every project's.
    pub viewer: Option<String>,
    pub visibility: VisibilityFilter,
    /// Shared images are listed for members whose status is one of these
    /// (Glance's `member_status`, default `accepted`; `None` for `all`).
    pub member_status: Option<MemberStatus>,
    pub ids: Option<Vec<String>>,
    pub names: Option<Vec<String>>,
    pub statuses: Option<Vec<ImageStatus>>,
    pub owners: Option<Vec<String>>,
    pub disk_formats: Option<Vec<String>>,
    pub container_formats: Option<Vec<String>>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    pub protected: Option<bool>,
    /// `false` (the default) hides hidden images; `true` lists only them.
    pub os_hidden: bool,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    /// Sort keys in order, each ascending (`true`) or descending; `created_at` and `id`
    /// are appended as tie-breakers.
    pub sort: Vec<(ImageSortKey, bool)>,
    /// The id of the last image of the previous page.
    pub marker: Option<String>,
    pub limit: usize,
}
