//! The one scorer: contract-validated rows in, every model output per row out.
//!
//! predict, `mlops score` and every later caller (evaluation, batch scoring, the pre-traffic
//! check) score through [`Scorer`], so the same row gets the same answer wherever it is scored:
//! values are validated and coerced by the contract (booleans, integers, nulls) before they
//! get here, and arranged in the model's input order here.

use mlops_contract::Contract;
use mlops_contract::validate::Value;

use crate::error::Result;
use crate::{Layout, Model, RowOutputs, rows_json};

/// A model ready to score the rows of one contract.
#[derive(Debug, Clone)]
pub struct Scorer {
    model: Model,
    layout: Layout,
    /// For each layout column, its index among the contract's features.
    order: Vec<usize>,
    /// Names of the classes, indexed by the model's integer label.
    class_labels: Option<Vec<String>>,
    /// The output holding that label: the first `i64` output of shape `[N]`.
    label_output: Option<String>,
}

impl Scorer {
    /// Checks that `model` takes exactly `contract`'s features and works out their order.
    pub fn new(model: Model, contract: &Contract, class_labels: Option<Vec<String>>) -> Result<Scorer> {
        let layout = Layout::of(&model)?;
        let order = layout.feature_order(contract)?;
        let label_output =
            model.outputs().iter().find(|o| o.dtype == "i64" && o.shape.len() == 1).map(|o| o.name.clone());
        Ok(Scorer { model, layout, order, class_labels, label_output })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// For each of the model's input columns, its index among the contract's features.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Scores rows of feature values in contract feature order (as the contract's validation
    /// yields them), returning each row's outputs by name, plus `class` when class labels are
    /// known.
    pub fn score(&self, rows: &[Vec<Value>]) -> Result<RowOutputs> {
        let inputs = self.layout.encode_values(rows, &self.order)?;
        let outputs = self.model.run(&inputs)?;
        let mut out = rows_json(&outputs, rows.len())?;
        self.add_class_names(&mut out);
        Ok(out)
    }

    /// Scores a chunk; if the chunk fails as a whole, scores row by row so that only the rows
    /// at fault carry an error.
    pub fn score_each(&self, rows: &[Vec<Value>]) -> Vec<Result<serde_json::Map<String, serde_json::Value>, String>> {
        match self.score(rows) {
            Ok(out) => out.into_iter().map(Ok).collect(),
            Err(_) => rows
                .iter()
                .map(|r| {
                    self.score(std::slice::from_ref(r))
                        .map(|mut o| o.pop().unwrap_or_default())
                        .map_err(|e| e.to_string())
                })
                .collect(),
        }
    }

    fn add_class_names(&self, rows: &mut RowOutputs) {
        let (Some(labels), Some(label)) = (&self.class_labels, &self.label_output) else { return };
        for row in rows.iter_mut() {
            let class = row.get(label).and_then(|v| v.as_u64()).and_then(|i| labels.get(i as usize)).cloned();
            if let Some(class) = class {
                row.insert("class".into(), class.into());
            }
        }
    }
}
