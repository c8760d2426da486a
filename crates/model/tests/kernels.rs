//! tract's kernel choice is made once per process, from the first model loaded, so it is
//! checked in a process of its own.

#[cfg(target_arch = "x86_64")]
#[test]
fn tract_runs_no_avx_kernel_once_a_model_of_narrow_products_loads() {
    use tract_onnx::prelude::tract_linalg::isa::{Isa, native};
    let model = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/models/mlp_regressor.onnx"))
        .expect("fixture");
    mlops_model::Model::load(&model).expect("loads");
    if std::env::var_os("TRACT_CPU_ISA").is_none() {
        let isa = native();
        for feature in [Isa::X86_64Avx, Isa::X86_64Avx2, Isa::X86_64Fma, Isa::X86_64Avx512f] {
            assert!(!isa.has(feature), "{feature:?} kernels are still offered: {isa:?}");
        }
    }
}
