//! How rows of feature values become a model's input tensors.
//!
//! Two layouts cover tabular exports: one float matrix `[N, F]` (features in order), or one
//! named `[N, 1]` input per column, typed float, double, int64 or string (what a
//! scikit-learn ColumnTransformer exports).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::{Model, NamedTensor, TensorData};
use mlops_contract::Contract;
use mlops_contract::validate::Value;

/// The element type of one input column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Elem {
    F32,
    F64,
    I64,
    Str,
}

impl Elem {
    fn of(dtype: &str) -> Option<Elem> {
        match dtype {
            "f32" => Some(Elem::F32),
            "f64" => Some(Elem::F64),
            "i64" => Some(Elem::I64),
            "string" => Some(Elem::Str),
            _ => None,
        }
    }
}

/// A model's input layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    /// One float input `[N, width]`; `width` is `None` when the model leaves it free.
    Matrix { name: String, elem: Elem, width: Option<usize> },
    /// One `[N, 1]` input per column, in model input order.
    Named { columns: Vec<(String, Elem)> },
}

/// One cell of a row, before conversion to the input's element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Num(f64),
    Int(i64),
    Text(String),
}

/// A cell borrowed from a row of cells or of validated values, as the conversion reads it.
#[derive(Debug, Clone, Copy)]
enum CellRef<'a> {
    Null,
    Num(f64),
    Int(i64),
    Text(&'a str),
}

impl<'a> From<&'a Cell> for CellRef<'a> {
    fn from(c: &'a Cell) -> CellRef<'a> {
        match c {
            Cell::Null => CellRef::Null,
            Cell::Num(v) => CellRef::Num(*v),
            Cell::Int(v) => CellRef::Int(*v),
            Cell::Text(s) => CellRef::Text(s),
        }
    }
}

impl<'a> From<&'a Value> for CellRef<'a> {
    fn from(v: &'a Value) -> CellRef<'a> {
        match v {
            Value::Null => CellRef::Null,
            Value::Float(f) => CellRef::Num(*f),
            Value::Int(i) => CellRef::Int(*i),
            Value::Bool(b) => CellRef::Int(i64::from(*b)),
            Value::Text(s) => CellRef::Text(s),
        }
    }
}

impl From<&Value> for Cell {
    fn from(v: &Value) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Float(f) => Cell::Num(*f),
            Value::Int(i) => Cell::Int(*i),
            Value::Bool(b) => Cell::Int(i64::from(*b)),
            Value::Text(s) => Cell::Text(s.to_string()),
        }
    }
}

impl Layout {
    /// Works out the layout of a model's inputs.
    pub fn of(model: &Model) -> Result<Layout> {
        let inputs = model.inputs();
        let describe =
            || inputs.iter().map(|i| format!("{} {} {:?}", i.name, i.dtype, i.shape)).collect::<Vec<_>>().join(", ");
        if let [input] = inputs
            && input.shape.len() == 2
            && input.shape[1] != "1"
            && let Some(elem @ (Elem::F32 | Elem::F64)) = Elem::of(&input.dtype)
        {
            return Ok(Layout::Matrix { name: input.name.clone(), elem, width: input.shape[1].parse().ok() });
        }
        let columns = inputs
            .iter()
            .map(|i| match (Elem::of(&i.dtype), i.shape.len(), i.shape.get(1).map(String::as_str)) {
                (Some(elem), 2, Some("1")) => Some((i.name.clone(), elem)),
                (Some(elem), 1, _) => Some((i.name.clone(), elem)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::Model(format!(
                    "inputs must be one float matrix [N, features] or one [N, 1] input per column; found {}",
                    describe()
                ))
            })?;
        Ok(Layout::Named { columns })
    }

    /// Number of cells a row needs.
    pub fn width(&self) -> Option<usize> {
        match self {
            Layout::Matrix { width, .. } => *width,
            Layout::Named { columns } => Some(columns.len()),
        }
    }

    /// Where each layout column's value sits in the contract's feature list, checking that
    /// the model takes exactly the contract's features.
    pub fn feature_order(&self, contract: &Contract) -> Result<Vec<usize>> {
        let features = &contract.features;
        match self {
            Layout::Matrix { width, .. } => {
                if let Some(w) = width
                    && *w != features.len()
                {
                    return Err(Error::Model(format!(
                        "the model takes {w} features but contract {} lists {} ({})",
                        contract.dataset,
                        features.len(),
                        features.join(", ")
                    )));
                }
                if let Some(c) = contract
                    .feature_columns()
                    .find(|c| !c.kind.is_numeric() && c.kind != mlops_contract::ColumnType::Bool)
                {
                    return Err(Error::Model(format!(
                        "feature {:?} is a {} column; a float matrix input takes numeric and bool features only",
                        c.name,
                        c.kind.name()
                    )));
                }
                Ok((0..features.len()).collect())
            }
            Layout::Named { columns } => {
                let order = columns
                    .iter()
                    .map(|(name, _)| {
                        features.iter().position(|f| f == name).ok_or_else(|| {
                            Error::Model(format!(
                                "model input {name:?} is not a feature of contract {}",
                                contract.dataset
                            ))
                        })
                    })
                    .collect::<Result<Vec<usize>>>()?;
                if let Some(unused) = features.iter().find(|f| !columns.iter().any(|(n, _)| n == *f)) {
                    return Err(Error::Model(format!(
                        "feature {unused:?} of contract {} is not a model input",
                        contract.dataset
                    )));
                }
                Ok(order)
            }
        }
    }

    /// Builds the input tensors for `rows`, each holding one cell per layout column.
    pub fn encode(&self, rows: &[Vec<Cell>]) -> Result<Vec<NamedTensor>> {
        let w = self.width().or_else(|| rows.first().map(Vec::len)).unwrap_or(0);
        if let Layout::Matrix { .. } = self
            && let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != w)
        {
            return Err(Error::Model(format!("row {i} has {} values, the model takes {w}", r.len())));
        }
        self.encode_rows(rows, &(0..w).collect::<Vec<usize>>())
    }

    /// Builds the input tensors for rows of validated values, reading layout column `j` of a
    /// row from its value `order[j]`: column by column, without copying the rows first.
    pub fn encode_values(&self, rows: &[Vec<Value>], order: &[usize]) -> Result<Vec<NamedTensor>> {
        self.encode_rows(rows, order)
    }

    fn encode_rows<'a, C>(&self, rows: &'a [Vec<C>], order: &[usize]) -> Result<Vec<NamedTensor>>
    where
        &'a C: Into<CellRef<'a>>,
    {
        let n = rows.len();
        let cell = |r: &'a Vec<C>, i: usize| r.get(i).map_or(CellRef::Null, Into::into);
        match self {
            Layout::Matrix { name, elem, width } => {
                let w = width.unwrap_or(order.len());
                if order.len() != w {
                    return Err(Error::Model(format!("{} features are given, the model takes {w}", order.len())));
                }
                let cells = rows.iter().flat_map(|r| order.iter().map(move |&i| cell(r, i)));
                let data = convert(*elem, cells, name)?;
                Ok(vec![NamedTensor { name: name.clone(), shape: vec![n, w], data }])
            }
            Layout::Named { columns } => columns
                .iter()
                .zip(order)
                .map(|((name, elem), &i)| {
                    let data = convert(*elem, rows.iter().map(|r| cell(r, i)), name)?;
                    Ok(NamedTensor { name: name.clone(), shape: vec![n, 1], data })
                })
                .collect(),
        }
    }
}

fn convert<'a>(elem: Elem, cells: impl Iterator<Item = CellRef<'a>>, input: &str) -> Result<TensorData> {
    let bad = |what: &str| Error::Model(format!("input {input:?}: {what}"));
    let number = |c: CellRef<'_>| match c {
        CellRef::Null => Ok(f64::NAN),
        CellRef::Num(v) => Ok(v),
        CellRef::Int(v) => Ok(v as f64),
        CellRef::Text(s) => s.trim().parse::<f64>().map_err(|_| bad(&format!("{s:?} is not a number"))),
    };
    Ok(match elem {
        Elem::F32 => TensorData::F32(cells.map(|c| number(c).map(|v| v as f32)).collect::<Result<Vec<f32>>>()?),
        Elem::F64 => TensorData::F64(cells.map(number).collect::<Result<Vec<f64>>>()?),
        Elem::I64 => TensorData::I64(
            cells
                .map(|c| match c {
                    CellRef::Int(v) => Ok(v),
                    CellRef::Num(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
                    CellRef::Text(s) => {
                        s.trim().parse::<i64>().map_err(|_| bad(&format!("{s:?} is not a whole number")))
                    }
                    CellRef::Null => Err(bad("a value is required (integer inputs have no missing value)")),
                    CellRef::Num(v) => Err(bad(&format!("{v} is not a whole number"))),
                })
                .collect::<Result<Vec<i64>>>()?,
        ),
        Elem::Str => TensorData::Str(
            cells
                .map(|c| match c {
                    // Exported string imputers treat the empty string as missing.
                    CellRef::Null => String::new(),
                    CellRef::Num(v) => v.to_string(),
                    CellRef::Int(v) => v.to_string(),
                    CellRef::Text(s) => s.to_string(),
                })
                .collect(),
        ),
    })
}

/// The outputs of one run, row by row: each row maps output names to JSON values.
pub type RowOutputs = Vec<serde_json::Map<String, serde_json::Value>>;

/// Splits run outputs `[rows, …]` into one JSON object per row, keyed by output name: a
/// scalar for an output of shape `[rows]`, an array otherwise.
pub fn rows_json(outputs: &[NamedTensor], rows: usize) -> Result<RowOutputs> {
    use serde_json::Value as J;
    let mut result = vec![serde_json::Map::new(); rows];
    for out in outputs {
        if out.shape.first() != Some(&rows) {
            return Err(Error::Model(format!("output {:?} has shape {:?}, expected {rows} rows", out.name, out.shape)));
        }
        let per_row: usize = out.shape[1..].iter().product();
        let scalar = out.shape.len() == 1;
        let at = |i: usize| match &out.data {
            TensorData::F32(v) => v.get(i).map_or(J::Null, |x| float(shortest(*x))),
            TensorData::F64(v) => v.get(i).map_or(J::Null, |x| float(*x)),
            TensorData::I64(v) => v.get(i).map_or(J::Null, |x| J::from(*x)),
            TensorData::Str(v) => v.get(i).map_or(J::Null, |x| J::from(x.as_str())),
        };
        for (r, row) in result.iter_mut().enumerate() {
            let cells = r * per_row..(r + 1) * per_row;
            let value = if scalar { at(cells.start) } else { J::Array(cells.map(at).collect()) };
            row.insert(out.name.clone(), value);
        }
    }
    Ok(result)
}

/// The f64 with the shortest decimal form that rounds to the same f32 (0.9853279, not
/// 0.9853278994560242), so JSON shows the value the model computed and nothing more.
fn shortest(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::from(v);
    }
    // ryu writes the shortest decimal that reads back as the same f32, on the stack.
    ryu::Buffer::new().format_finite(v).parse().unwrap_or(f64::from(v))
}

/// JSON has no NaN or infinity; those become null rather than failing the response.
fn float(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}
