//! The Glue/Athena tables over the lake, with their schemas taken from the contract.
//!
//! Each dataset has a `curated` table (the Parquet ingest writes, typed as
//! [`crate::curated::schema`] types it) and a `quarantine` table (the JSON Lines records of the
//! rows ingest refused); a model has a `capture` table over what predict captured. Every table
//! is partitioned by `dt` with partition projection, so a new day's partition is queryable
//! the moment its first object lands, without a crawler or `MSCK REPAIR TABLE`.

use mlops_contract::{ColumnType, Contract};

/// How a table's objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Parquet,
    JsonLines,
}

/// One external table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's name: lower case letters, digits and underscores, as Glue requires.
    pub name: String,
    /// The `s3://` prefix holding its `dt=YYYY-MM-DD/` partitions, with a trailing slash.
    pub location: String,
    /// Columns as (name, Hive type), in the order of the stored records.
    pub columns: Vec<(String, String)>,
    pub storage: Storage,
    /// Whether the objects sit under `v<N>/` (a model version) before `dt=…/`.
    pub versioned: bool,
}

/// Where projected partitions begin; later dates up to today are projected too.
#[derive(Debug, Clone, Copy)]
pub struct Projection<'a> {
    /// The first `dt`, as `YYYY-MM-DD`.
    pub since: &'a str,
}

/// A name Glue and Athena take: lower case, with every other character an underscore.
pub fn table_name(parts: &[&str]) -> String {
    let joined: String =
        parts.join("_").chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if joined.starts_with(|c: char| c.is_ascii_digit()) { format!("t_{joined}") } else { joined }
}

/// The Hive type of a contract column in the curated Parquet.
pub fn parquet_type(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Float => "double",
        ColumnType::Int => "bigint",
        ColumnType::Bool => "boolean",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Category | ColumnType::String => "string",
    }
}

/// The Hive type of a contract column in JSON Lines, where timestamps stay text.
fn json_type(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Timestamp => "string",
        t => parquet_type(t),
    }
}

/// The curated table of a dataset.
pub fn curated(contract: &Contract, bucket: &str) -> Table {
    Table {
        name: table_name(&[&contract.dataset, "curated"]),
        location: format!("s3://{bucket}/curated/{}/", contract.dataset),
        columns: contract.columns.iter().map(|c| (c.name.clone(), parquet_type(c.kind).to_string())).collect(),
        storage: Storage::Parquet,
        versioned: false,
    }
}

/// The predictions table of a model: what batch and stream scoring wrote under
/// `predictions/<model>/v<N>/dt=…/`, one row per scored row, partitioned by version and date.
/// It joins the curated table by `source` (the curated object) and `row` (its number there,
/// from 1), and by the contract's id column when there is one.
pub fn predictions(model: &str, contract: &Contract, bucket: &str) -> Table {
    let mut columns = vec![("source".to_string(), "string".to_string()), ("row".to_string(), "bigint".to_string())];
    if let Some(id) = contract.id.as_deref().and_then(|id| contract.columns.iter().find(|c| c.name == id)) {
        columns.push((id.name.clone(), parquet_type(id.kind).to_string()));
    }
    for name in ["class", "prediction", "error"] {
        columns.push((name.to_string(), "string".to_string()));
    }
    Table {
        name: table_name(&[model, "predictions"]),
        location: format!("s3://{bucket}/predictions/{model}/"),
        columns,
        storage: Storage::Parquet,
        versioned: true,
    }
}

/// The quarantine table of a dataset: one record per refused row, or per batch refused whole.
/// Struct field names are quoted, since `column` is a reserved word of Athena's DDL.
pub fn quarantine(contract: &Contract, bucket: &str) -> Table {
    let columns = [
        ("source", "string"),
        ("line", "bigint"),
        ("raw", "string"),
        ("batch_rows", "bigint"),
        ("reasons", "array<struct<`column`:string,`rule`:string,`message`:string>>"),
    ];
    Table {
        name: table_name(&[&contract.dataset, "quarantine"]),
        location: format!("s3://{bucket}/quarantine/{}/", contract.dataset),
        columns: columns.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect(),
        storage: Storage::JsonLines,
        versioned: false,
    }
}

/// The capture table of a model serving `contract`: the instance's values by column name and
/// where each came from. The prediction's shape is the model's own, so it is not a column.
pub fn capture(model: &str, contract: &Contract, bucket: &str) -> Table {
    let mut columns: Vec<(String, String)> = contract
        .columns
        .iter()
        .filter(|c| c.name != "capture" && c.name != "prediction")
        .map(|c| (c.name.clone(), json_type(c.kind).to_string()))
        .collect();
    columns.push((
        "capture".into(),
        "struct<`at`:string,`request_id`:string,`inference_id`:string,`model`:string,`model_version`:int,`variant`:string>"
            .into(),
    ));
    Table {
        name: table_name(&[model, "capture"]),
        location: format!("s3://{bucket}/capture/{model}/"),
        columns,
        storage: Storage::JsonLines,
        versioned: false,
    }
}

fn quoted(s: &str) -> String {
    s.replace('\'', "''")
}

impl Table {
    /// The Athena statement that creates the table in `database`.
    pub fn ddl(&self, database: &str, projection: Projection<'_>) -> String {
        let columns: Vec<String> =
            self.columns.iter().map(|(name, t)| format!("  `{}` {t}", name.replace('`', "``"))).collect();
        let stored = match self.storage {
            Storage::Parquet => "STORED AS PARQUET".to_string(),
            Storage::JsonLines => {
                "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\nWITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')\nSTORED AS TEXTFILE".to_string()
            }
        };
        let location = quoted(&self.location);
        let partitions: Vec<String> = self.partition_keys().iter().map(|(n, t)| format!("`{n}` {t}")).collect();
        let properties: Vec<String> =
            self.properties(projection).iter().map(|(k, v)| format!("  '{}' = '{}'", quoted(k), quoted(v))).collect();
        format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{name}` (\n{columns}\n)\nPARTITIONED BY ({partitions})\n{stored}\nLOCATION '{location}'\nTBLPROPERTIES (\n{properties}\n);\n",
            name = self.name,
            columns = columns.join(",\n"),
            partitions = partitions.join(", "),
            properties = properties.join(",\n"),
        )
    }

    /// The partition columns: `dt`, after `version` for a versioned table.
    pub fn partition_keys(&self) -> Vec<(String, String)> {
        let mut keys = Vec::new();
        if self.versioned {
            keys.push(("version".to_string(), "int".to_string()));
        }
        keys.push(("dt".to_string(), "string".to_string()));
        keys
    }

    /// The table's properties: partition projection on its partition columns.
    pub fn properties(&self, projection: Projection<'_>) -> Vec<(String, String)> {
        let mut properties = vec![("projection.enabled".to_string(), "true".to_string())];
        let mut template = self.location.clone();
        if self.versioned {
            properties.push(("projection.version.type".into(), "integer".into()));
            properties.push(("projection.version.range".into(), "1,10000".into()));
            template.push_str("v${version}/");
        }
        template.push_str("dt=${dt}/");
        properties.extend([
            ("projection.dt.type".to_string(), "date".to_string()),
            ("projection.dt.format".into(), "yyyy-MM-dd".into()),
            ("projection.dt.range".into(), format!("{},NOW", projection.since)),
            ("projection.dt.interval".into(), "1".into()),
            ("projection.dt.interval.unit".into(), "DAYS".into()),
            ("storage.location.template".into(), template),
        ]);
        properties
    }

    /// Hive's input format, output format and SerDe for the table's objects.
    pub fn formats(&self) -> (&'static str, &'static str, &'static str) {
        match self.storage {
            Storage::Parquet => (
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            ),
            Storage::JsonLines => (
                "org.apache.hadoop.mapred.TextInputFormat",
                "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "org.openx.data.jsonserde.JsonSerDe",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: penguins-labels\nevent_time: t\ncolumns:\n  - {name: t, type: timestamp}\n  - {name: x, type: float}\n  \
             - {name: n, type: int}\n  - {name: ok, type: bool}\n  - {name: k, type: category, allowed: [a]}\n",
            "c.yaml",
        )
        .expect("contract")
    }

    #[test]
    fn the_curated_ddl_projects_dt_and_types_every_column() {
        let ddl = curated(&contract(), "lake").ddl("mlops_lake", Projection { since: "2026-01-01" });
        assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `mlops_lake`.`penguins_labels_curated` (\n"));
        for line in ["  `t` timestamp,", "  `x` double,", "  `n` bigint,", "  `ok` boolean,", "  `k` string\n"] {
            assert!(ddl.contains(line), "{line} in {ddl}");
        }
        assert!(ddl.contains("STORED AS PARQUET\nLOCATION 's3://lake/curated/penguins-labels/'"), "{ddl}");
        assert!(ddl.contains("'projection.dt.range' = '2026-01-01,NOW'"), "{ddl}");
        assert!(ddl.contains("'storage.location.template' = 's3://lake/curated/penguins-labels/dt=${dt}/'"), "{ddl}");
    }

    #[test]
    fn predictions_are_projected_by_version_and_date() {
        let ddl = predictions("penguins", &contract(), "lake").ddl("db", Projection { since: "2026-01-01" });
        assert!(ddl.contains("PARTITIONED BY (`version` int, `dt` string)"), "{ddl}");
        assert!(
            ddl.contains("'storage.location.template' = 's3://lake/predictions/penguins/v${version}/dt=${dt}/'"),
            "{ddl}"
        );
        assert!(ddl.contains("  `source` string,\n  `row` bigint,\n  `class` string,"), "{ddl}");
    }

    #[test]
    fn names_are_what_glue_takes() {
        assert_eq!(table_name(&["Penguins-Labels", "curated"]), "penguins_labels_curated");
        assert_eq!(table_name(&["2026.x", "capture"]), "t_2026_x_capture");
    }
}
