-- Server tags (compute microversion 2.26): a JSON list, as metadata is; the list
-- filters read it with json_each.
ALTER TABLE servers ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
