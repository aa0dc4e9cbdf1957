//! Image queries: image records, their members and import tasks, and the filtered,
//! sorted, keyset-paged image listing.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::{Db, Result, Tx, flag, time};
use crate::model::{
    Image, ImageMember, ImageQuery, ImageSortKey, ImageStatus, ImageTask, MemberStatus, TaskStatus,
    Visibility, VisibilityFilter,
};

fn corrupt(
    column: usize,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
}

fn image(r: &Row) -> rusqlite::Result<Image> {
    let status: String = r.get("status")?;
    let visibility: String = r.get("visibility")?;
    let tags: String = r.get("tags")?;
    let properties: String = r.get("properties")?;
    Ok(Image {
        id: r.get("id")?,
        name: r.get("name")?,
        owner: r.get("owner")?,
        status: ImageStatus::parse(&status)
            .ok_or_else(|| corrupt(0, format!("image status {status:?}")))?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| corrupt(0, format!("image visibility {visibility:?}")))?,
        protected: r.get("protected")?,
        os_hidden: r.get("os_hidden")?,
        disk_format: r.get("disk_format")?,
        container_format: r.get("container_format")?,
        min_ram: r.get("min_ram")?,
        min_disk: r.get("min_disk")?,
        size: r.get("size")?,
        virtual_size: r.get("virtual_size")?,
        checksum: r.get("checksum")?,
        os_hash_algo: r.get("os_hash_algo")?,
        os_hash_value: r.get("os_hash_value")?,
        architecture: r.get("architecture")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt(0, e))?,
        properties: serde_json::from_str(&properties).map_err(|e| corrupt(0, e))?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

fn member(r: &Row) -> rusqlite::Result<ImageMember> {
    let status: String = r.get("status")?;
    Ok(ImageMember {
        image_id: r.get("image_id")?,
        member_id: r.get("member_id")?,
        status: MemberStatus::parse(&status)
            .ok_or_else(|| corrupt(0, format!("member status {status:?}")))?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn task(r: &Row) -> rusqlite::Result<ImageTask> {
    let status: String = r.get("status")?;
    Ok(ImageTask {
        id: r.get("id")?,
        image_id: r.get("image_id")?,
        owner: r.get("owner")?,
        user_id: r.get("user_id")?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| corrupt(0, format!("task status {status:?}")))?,
        method: r.get("method")?,
        uri: r.get("uri")?,
        message: r.get("message")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// The SQL expression a sort key orders by: NULLs folded to a value below every real
/// one, so that ordering and the keyset comparison agree.
fn sort_expr(key: ImageSortKey) -> &'static str {
    match key {
        ImageSortKey::Name => "coalesce(i.name, '')",
        ImageSortKey::Status => "i.status",
        ImageSortKey::ContainerFormat => "coalesce(i.container_format, '')",
        ImageSortKey::DiskFormat => "coalesce(i.disk_format, '')",
        ImageSortKey::Size => "coalesce(i.size, -1)",
        ImageSortKey::Id => "i.id",
        ImageSortKey::CreatedAt => "i.created_at",
        ImageSortKey::UpdatedAt => "i.updated_at",
    }
}

/// A WHERE clause under construction, with its bound values.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    values: Vec<SqlValue>,
}

impl Conditions {
    fn push(&mut self, sql: impl Into<String>, values: impl IntoIterator<Item = SqlValue>) {
        self.sql.push(sql.into());
        self.values.extend(values);
    }

    fn one_of(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            self.sql.push("0".into());
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.push(
            format!("{column} IN ({marks})"),
            values.iter().cloned().map(SqlValue::Text),
        );
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            "1".into()
        } else {
            self.sql.join(" AND ")
        }
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_string())
}

/// Who may see what, as SQL (see core's visibility rules).
fn visibility_conditions(q: &ImageQuery, c: &mut Conditions) {
    let member = |c: &mut Conditions, project: &str| -> String {
        match q.member_status {
            Some(status) => {
                c.values.push(text(project));
                c.values.push(text(status.as_str()));
                "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id \
                 AND m.member_id = ? AND m.status = ?)"
                    .to_string()
            }
            None => {
                c.values.push(text(project));
                "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id \
                 AND m.member_id = ?)"
                    .to_string()
            }
        }
    };
    let Some(project) = &q.viewer else {
        // An administrator sees every project's images.
        match q.visibility {
            VisibilityFilter::Default | VisibilityFilter::All => {}
            VisibilityFilter::Only(v) => c.push("i.visibility = ?", [text(v.as_str())]),
        }
        return;
    };
    let sql = match q.visibility {
        VisibilityFilter::Default | VisibilityFilter::All => {
            c.values.push(text(project));
            let shared = member(c, project);
            let community = if q.visibility == VisibilityFilter::All {
                " OR i.visibility = 'community'"
            } else {
                ""
            };
            format!(
                "(i.visibility = 'public' OR i.owner = ? \
                 OR (i.visibility = 'shared' AND {shared}){community})"
            )
        }
        VisibilityFilter::Only(Visibility::Public) => "i.visibility = 'public'".into(),
        VisibilityFilter::Only(Visibility::Community) => "i.visibility = 'community'".into(),
        VisibilityFilter::Only(Visibility::Private) => {
            c.values.push(text(project));
            "(i.visibility = 'private' AND i.owner = ?)".into()
        }
        VisibilityFilter::Only(Visibility::Shared) => {
            c.values.push(text(project));
            let shared = member(c, project);
            format!("(i.visibility = 'shared' AND (i.owner = ? OR {shared}))")
        }
    };
    c.sql.push(sql);
}

impl Db<'_> {
    pub fn image_get(&self, id: &str) -> Result<Option<Image>> {
        Ok(self
            .query_row("SELECT * FROM images WHERE id = ?1", [id], image)
            .optional()?)
    }

    pub fn image_member_get(&self, image_id: &str, member_id: &str) -> Result<Option<ImageMember>> {
        Ok(self
            .query_row(
                "SELECT * FROM image_members WHERE image_id = ?1 AND member_id = ?2",
                [image_id, member_id],
                member,
            )
            .optional()?)
    }

    pub fn image_members_list(&self, image_id: &str) -> Result<Vec<ImageMember>> {
        let mut stmt = self.prepare(
            "SELECT * FROM image_members WHERE image_id = ?1 ORDER BY created_at, member_id",
        )?;
        let rows = stmt.query_map([image_id], member)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn image_tasks_list(&self, image_id: &str) -> Result<Vec<ImageTask>> {
        let mut stmt =
            self.prepare("SELECT * FROM image_tasks WHERE image_id = ?1 ORDER BY created_at, id")?;
        let rows = stmt.query_map([image_id], task)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Import tasks, newest first: a project's, or everyone's for `None`.
    pub fn image_tasks_of(&self, owner: Option<&str>) -> Result<Vec<ImageTask>> {
        let mut stmt = self.prepare(
            "SELECT * FROM image_tasks WHERE ?1 IS NULL OR owner = ?1
             ORDER BY created_at DESC, id DESC",
        )?;
        let rows = stmt.query_map([owner], task)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn image_task_get(&self, id: &str) -> Result<Option<ImageTask>> {
        Ok(self
            .query_row("SELECT * FROM image_tasks WHERE id = ?1", [id], task)
            .optional()?)
    }

    /// One page of images. `None` when the marker image does not exist.
    pub fn images_list(&self, q: &ImageQuery) -> Result<Option<Vec<Image>>> {
        let mut c = Conditions::default();
        visibility_conditions(q, &mut c);
        if let Some(ids) = &q.ids {
            c.one_of("i.id", ids);
        }
        if let Some(names) = &q.names {
            c.one_of("i.name", names);
        }
        if let Some(statuses) = &q.statuses {
            let statuses: Vec<String> = statuses.iter().map(|s| s.as_str().to_string()).collect();
            c.one_of("i.status", &statuses);
        }
        if let Some(owners) = &q.owners {
            c.one_of("i.owner", owners);
        }
        if let Some(formats) = &q.disk_formats {
            c.one_of("i.disk_format", formats);
        }
        if let Some(formats) = &q.container_formats {
            c.one_of("i.container_format", formats);
        }
        for tag in &q.tags {
            c.push(
                "EXISTS (SELECT 1 FROM json_each(i.tags) t WHERE t.value = ?)",
                [text(tag)],
            );
        }
        if let Some(protected) = q.protected {
            c.push("i.protected = ?", [SqlValue::Integer(flag(protected))]);
        }
        c.push("i.os_hidden = ?", [SqlValue::Integer(flag(q.os_hidden))]);
        if let Some(min) = q.size_min {
            c.push("i.size >= ?", [SqlValue::Integer(min)]);
        }
        if let Some(max) = q.size_max {
            c.push("i.size <= ?", [SqlValue::Integer(max)]);
        }

        // The sort keys, with created_at and id appended as tie-breakers in the
        // direction of the first key (as Glance does), so the order is total.
        let mut sort = q.sort.clone();
        let default_asc = sort.first().is_some_and(|(_, asc)| *asc);
        for key in [ImageSortKey::CreatedAt, ImageSortKey::Id] {
            if !sort.iter().any(|(k, _)| *k == key) {
                sort.push((key, default_asc));
            }
        }

        if let Some(marker) = &q.marker {
            let exprs: Vec<&str> = sort.iter().map(|(k, _)| sort_expr(*k)).collect();
            let found: Option<Vec<SqlValue>> = self
                .query_row(
                    &format!("SELECT {} FROM images i WHERE i.id = ?1", exprs.join(", ")),
                    [marker],
                    |r| (0..exprs.len()).map(|n| r.get::<_, SqlValue>(n)).collect(),
                )
                .optional()?;
            let Some(values) = found else {
                return Ok(None);
            };
            // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR … with each > flipped for desc.
            let mut alternatives = Vec::new();
            let mut bound = Vec::new();
            for (n, (key, asc)) in sort.iter().enumerate() {
                let mut parts = Vec::new();
                for (j, (earlier, _)) in sort.iter().enumerate().take(n) {
                    parts.push(format!("{} = ?", sort_expr(*earlier)));
                    bound.push(values[j].clone());
                }
                let op = if *asc { ">" } else { "<" };
                parts.push(format!("{} {op} ?", sort_expr(*key)));
                bound.push(values[n].clone());
                alternatives.push(format!("({})", parts.join(" AND ")));
            }
            c.push(format!("({})", alternatives.join(" OR ")), bound);
        }

        let order: Vec<String> = sort
            .iter()
            .map(|(k, asc)| format!("{} {}", sort_expr(*k), if *asc { "ASC" } else { "DESC" }))
            .collect();
        let sql = format!(
            "SELECT i.* FROM images i WHERE {} ORDER BY {} LIMIT {}",
            c.clause(),
            order.join(", "),
            q.limit
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(c.values.iter()), image)?;
        Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
    }
}

impl Tx<'_> {
    pub fn image_insert(&self, i: &Image) -> Result<()> {
        self.execute(
            "INSERT INTO images (id, name, owner, status, visibility, protected, os_hidden,
                 disk_format, container_format, min_ram, min_disk, size, virtual_size,
                 checksum, os_hash_algo, os_hash_value, architecture, tags, properties,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, ?21)",
            params![
                i.id,
                i.name,
                i.owner,
                i.status.as_str(),
                i.visibility.as_str(),
                flag(i.protected),
                flag(i.os_hidden),
                i.disk_format,
                i.container_format,
                i.min_ram,
                i.min_disk,
                i.size,
                i.virtual_size,
                i.checksum,
                i.os_hash_algo,
                i.os_hash_value,
                i.architecture,
                serde_json::to_string(&i.tags)?,
                serde_json::to_string(&i.properties)?,
                i.created_at,
                i.updated_at,
            ],
        )?;
        Ok(())
    }

    /// Saves the attributes a user may change (status and data fields have their own
    /// calls, so a concurrent upload is never undone by an update).
    pub fn image_save_attributes(&self, i: &Image) -> Result<bool> {
        let n = self.execute(
            "UPDATE images SET name = ?2, owner = ?3, visibility = ?4, protected = ?5,
                 os_hidden = ?6, disk_format = ?7, container_format = ?8, min_ram = ?9,
                 min_disk = ?10, architecture = ?11, tags = ?12, properties = ?13,
                 updated_at = ?14
             WHERE id = ?1",
            params![
                i.id,
                i.name,
                i.owner,
                i.visibility.as_str(),
                flag(i.protected),
                flag(i.os_hidden),
                i.disk_format,
                i.container_format,
                i.min_ram,
                i.min_disk,
                i.architecture,
                serde_json::to_string(&i.tags)?,
                serde_json::to_string(&i.properties)?,
                i.updated_at,
            ],
        )?;
        Ok(n == 1)
    }

    /// Moves an image from `from` to `to`; false when it is not in `from` (or gone).
    pub fn image_set_status(
        &self,
        id: &str,
        from: ImageStatus,
        to: ImageStatus,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self.execute(
            "UPDATE images SET status = ?3, updated_at = ?4 WHERE id = ?1 AND status = ?2",
            params![id, from.as_str(), to.as_str(), at],
        )?;
        Ok(n == 1)
    }

    /// Records stored data and makes the image active; false when it is no longer in
    /// `from` (deleted meanwhile).
    pub fn image_set_data(&self, from: ImageStatus, data: &Image) -> Result<bool> {
        let n = self.execute(
            "UPDATE images SET status = 'active', size = ?3, virtual_size = ?4,
                 checksum = ?5, os_hash_algo = ?6, os_hash_value = ?7, updated_at = ?8
             WHERE id = ?1 AND status = ?2",
            params![
                data.id,
                from.as_str(),
                data.size,
                data.virtual_size,
                data.checksum,
                data.os_hash_algo,
                data.os_hash_value,
                data.updated_at,
            ],
        )?;
        Ok(n == 1)
    }

    pub fn image_delete(&self, id: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM images WHERE id = ?1", [id])? == 1)
    }

    pub fn image_member_insert(&self, m: &ImageMember) -> Result<()> {
        self.execute(
            "INSERT INTO image_members (image_id, member_id, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                m.image_id,
                m.member_id,
                m.status.as_str(),
                m.created_at,
                m.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn image_members_count(&self, image_id: &str) -> Result<usize> {
        let n: i64 = self.query_row(
            "SELECT count(*) FROM image_members WHERE image_id = ?1",
            [image_id],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    pub fn image_member_set_status(
        &self,
        image_id: &str,
        member_id: &str,
        status: MemberStatus,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self.execute(
            "UPDATE image_members SET status = ?3, updated_at = ?4
             WHERE image_id = ?1 AND member_id = ?2",
            params![image_id, member_id, status.as_str(), at],
        )?;
        Ok(n == 1)
    }

    pub fn image_member_delete(&self, image_id: &str, member_id: &str) -> Result<bool> {
        let n = self.execute(
            "DELETE FROM image_members WHERE image_id = ?1 AND member_id = ?2",
            [image_id, member_id],
        )?;
        Ok(n == 1)
    }

    pub fn image_task_insert(&self, t: &ImageTask) -> Result<()> {
        self.execute(
            "INSERT INTO image_tasks (id, image_id, owner, user_id, status, method, uri,
                 message, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                t.id,
                t.image_id,
                t.owner,
                t.user_id,
                t.status.as_str(),
                t.method,
                t.uri,
                t.message,
                t.created_at,
                t.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn image_task_finish(
        &self,
        id: &str,
        status: TaskStatus,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "UPDATE image_tasks SET status = ?2, message = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, status.as_str(), message, at],
        )?;
        Ok(())
    }

    /// After a restart: uploads and imports that were under way did not finish. Their
    /// images go back to `queued` and their tasks fail; returns the images' ids.
    pub fn images_recover(&self, message: &str, at: DateTime<Utc>) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "UPDATE images SET status = 'queued', updated_at = ?1
             WHERE status IN ('saving', 'importing') RETURNING id",
        )?;
        let ids = stmt
            .query_map([at], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        self.execute(
            "UPDATE image_tasks SET status = 'failure', message = ?1, updated_at = ?2
             WHERE status = 'processing'",
            params![message, at],
        )?;
        Ok(ids)
    }
}
