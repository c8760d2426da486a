//! `mlops lake`: the embedded S3 lake on its own.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mlops_contract::Contract;
use mlops_devkit::lake_server::{EmbeddedLake, LakeCredentials, ensure_bucket};
use mlops_flows::baseline::training_baseline;
use mlops_lake::{Lake, keys};

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Serve a directory as an S3-compatible endpoint on 127.0.0.1 until interrupted.
    Serve(ServeArgs),
    Dataset(DatasetArgs),
    Ddl(DdlArgs),
    Tables(TablesArgs),
}

impl LakeCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            LakeCommand::Serve(args) => args.run().await,
            LakeCommand::Dataset(args) => args.run().await,
            LakeCommand::Ddl(args) => args.run(&mut std::io::stdout()),
            LakeCommand::Tables(args) => args.run().await,
        }
    }
}

/// Publish a dataset that no model is registered with (ground truth, say), so that ingest takes
/// the batches dropped under raw/<dataset>/.
///
/// Writes the contract to datasets/<dataset>/contract.yaml and the baseline that ingest cuts
/// its profiles on, computed from the given rows, to datasets/<dataset>/baseline.json.
/// Registering a model does the same for the model's dataset.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// The dataset's contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// Rows the baseline is computed from: .csv, .jsonl or .ndjson, optionally gzip.
    #[arg(long = "baseline-from", required = true, num_args = 1..)]
    pub baseline_from: Vec<PathBuf>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl DatasetArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let lake = self.lake.connect().await?;
        let contract = Contract::load(&self.contract)?;
        let (contract_key, baseline_key) =
            publish_dataset(&lake, &contract, &self.baseline_from).await.map_err(lake_hint)?;
        println!(
            "dataset {} published: s3://{b}/{contract_key}, s3://{b}/{baseline_key}",
            contract.dataset,
            b = lake.bucket()
        );
        Ok(())
    }
}

/// Print the Athena DDL of a dataset's tables: curated rows (Parquet) and quarantined rows
/// (JSON Lines), and with --model the model's captures and batch or stream predictions, each
/// partitioned by dt with partition projection so that every day is queryable as soon as its
/// first object lands.
///
/// The schemas come from the contract, typed as ingest writes them. Run the statements in
/// Athena once per dataset (or after a contract change), in the Glue database the template
/// creates (its GlueDatabase output, mlops_lake_<stage>), for example:
///
///   mlops lake ddl --contract contract.yaml --bucket my-lake > tables.sql
#[derive(Debug, Args)]
pub struct DdlArgs {
    /// The dataset's contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// The lake bucket the tables read.
    #[arg(long, env = "LAKE_BUCKET", default_value = crate::DEFAULT_BUCKET)]
    pub bucket: String,
    /// The Glue database of the tables (the template's is mlops_lake_<stage>).
    #[arg(long, default_value = "mlops_lake_dev")]
    pub database: String,
    /// Also the capture and predictions tables of this model (which serves the contract's
    /// dataset).
    #[arg(long)]
    pub model: Option<String>,
    /// The first date partition projection offers (YYYY-MM-DD); dates up to today follow.
    #[arg(long, default_value = "2020-01-01", value_parser = parse_day)]
    pub since: String,
}

fn parse_day(s: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|e| format!("{s:?} is not a date as YYYY-MM-DD: {e}"))
}

impl DdlArgs {
    /// The tables these arguments name.
    pub fn tables(&self) -> anyhow::Result<Vec<mlops_formats::athena::Table>> {
        use mlops_formats::athena;
        let contract = Contract::load(&self.contract)?;
        if !self.database.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            anyhow::bail!("--database {:?}: Glue takes lower case letters, digits and underscores only", self.database);
        }
        let mut tables = vec![athena::curated(&contract, &self.bucket), athena::quarantine(&contract, &self.bucket)];
        if let Some(model) = &self.model {
            tables.push(athena::capture(model, &contract, &self.bucket));
            tables.push(athena::predictions(model, &contract, &self.bucket));
        }
        Ok(tables)
    }

    pub fn run(self, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        let projection = mlops_formats::athena::Projection { since: &self.since };
        let statements: Vec<String> = self.tables()?.iter().map(|t| t.ddl(&self.database, projection)).collect();
        writeln!(out, "{}", statements.join("\n"))?;
        Ok(())
    }
}

/// Create or update a dataset's tables in the Glue Data Catalog, as `mlops lake ddl` prints
/// them: curated and quarantine, and with --model the model's capture and predictions, each
/// with partition projection on dt. A table that exists is updated to the contract's schema.
///
/// Uses the AWS credentials and region of the environment (AWS_ENDPOINT_URL_GLUE names another
/// endpoint). Run it when a dataset's first contract is published and after a contract
/// changes; the tables answer Athena queries at once, with no crawler.
#[derive(Debug, Args)]
pub struct TablesArgs {
    #[command(flatten)]
    pub tables: DdlArgs,
}

impl TablesArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let glue = aws_sdk_glue::Client::new(&aws);
        for (name, created) in put_tables(&glue, &self.tables).await? {
            println!("{} table {}.{name}", if created { "created" } else { "updated" }, self.tables.database);
        }
        Ok(())
    }
}

/// The Glue `TableInput` of a table.
fn table_input(
    table: &mlops_formats::athena::Table,
    projection: mlops_formats::athena::Projection<'_>,
) -> anyhow::Result<aws_sdk_glue::types::TableInput> {
    use aws_sdk_glue::types::{Column, SerDeInfo, StorageDescriptor, TableInput};
    // Glue keeps Hive types without the quotes Athena's DDL needs around reserved words.
    let column = |(name, kind): &(String, String)| Column::builder().name(name).r#type(kind.replace('`', "")).build();
    let columns = table.columns.iter().map(column).collect::<Result<Vec<_>, _>>()?;
    let partitions = table.partition_keys().iter().map(column).collect::<Result<Vec<_>, _>>()?;
    let (input, output, serde) = table.formats();
    let storage = StorageDescriptor::builder()
        .set_columns(Some(columns))
        .location(&table.location)
        .input_format(input)
        .output_format(output)
        .serde_info(SerDeInfo::builder().serialization_library(serde).build())
        .build();
    let mut builder = TableInput::builder()
        .name(&table.name)
        .table_type("EXTERNAL_TABLE")
        .storage_descriptor(storage)
        .set_partition_keys(Some(partitions))
        .parameters("EXTERNAL", "TRUE")
        .parameters("classification", if input.contains("Parquet") { "parquet" } else { "json" });
    for (key, value) in table.properties(projection) {
        builder = builder.parameters(key, value);
    }
    Ok(builder.build()?)
}

/// Creates each table `args` names, or updates it when it exists; returns (name, created).
pub async fn put_tables(glue: &aws_sdk_glue::Client, args: &DdlArgs) -> anyhow::Result<Vec<(String, bool)>> {
    let projection = mlops_formats::athena::Projection { since: &args.since };
    let mut done = Vec::new();
    for table in args.tables()? {
        let input = table_input(&table, projection)?;
        let exists = match glue.get_table().database_name(&args.database).name(&table.name).send().await {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => false,
            Err(e) => anyhow::bail!(
                "reading table {}.{}: {}",
                args.database,
                table.name,
                aws_sdk_glue::error::DisplayErrorContext(e)
            ),
        };
        let result = if exists {
            glue.update_table()
                .database_name(&args.database)
                .table_input(input)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_glue::error::DisplayErrorContext(e).to_string())
        } else {
            glue.create_table()
                .database_name(&args.database)
                .table_input(input)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_glue::error::DisplayErrorContext(e).to_string())
        };
        result.map_err(|e| anyhow::anyhow!("writing table {}.{}: {e}", args.database, table.name))?;
        done.push((table.name.clone(), !exists));
    }
    Ok(done)
}

/// Writes a dataset's contract and its baseline (profiled from `files`); returns their keys.
pub async fn publish_dataset(lake: &Lake, contract: &Contract, files: &[PathBuf]) -> anyhow::Result<(String, String)> {
    let baseline = training_baseline(contract, files)?;
    let (contract_key, baseline_key) =
        (keys::dataset_contract(&contract.dataset), keys::dataset_baseline(&contract.dataset));
    let profile = baseline.profile.to_json();
    lake.put(&contract_key, contract.to_yaml().into_bytes(), "application/yaml").await?;
    lake.put(&baseline_key, profile, "application/json").await?;
    Ok((contract_key, baseline_key))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the buckets (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ServeArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let bucket = &self.lake.bucket;
        let server = EmbeddedLake::start_with(&self.dir, self.port, LakeCredentials::from_env()).await?;
        ensure_bucket(&server.client(), bucket).await?;
        println!("Embedded S3 lake serving {} at {}", self.dir.display(), server.endpoint());
        println!("Bucket: {bucket}. Point the AWS SDKs, the CLI and the functions at it with:\n");
        for (name, value) in server.env_vars() {
            println!("  export {name}={value}");
        }
        println!("  export LAKE_BUCKET={bucket}");
        println!("\nPress Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}
