//! A quantized weight matrix and its product with activations.
//!
//! candle multiplies a `Q4_K` matrix through a copy repacked into wider tiles (1.33× the
//! bytes, made on first use). That pays off when many rows of activations share each
//! weight (reading a prompt), but writing multiplies one row at a time: every weight is
//! then read once per token and the product is bound by memory, so the extra bytes cost
//! more than the tiles save. One row is therefore multiplied against the matrix as the
//! file stores it, with candle's own dot products; on two cores this took writing from
//! 6.6–7.1 to 10.5–11.4 tokens/s with the 1.5B model. The output layer, which only ever
//! sees one row, is then never repacked at all.

use candle_core::quantized::k_quants::{self, BlockQ4K};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};

/// A quantized matrix of shape (outputs, inputs), applied as `x · Wᵀ`.
pub(super) struct Matrix(QMatMul);

impl Matrix {
    pub(super) fn new(weight: QTensor) -> Result<Self> {
        QMatMul::from_qtensor(weight).map(Self)
    }

    pub(super) fn shared(weight: std::sync::Arc<QTensor>) -> Result<Self> {
        QMatMul::from_arc(weight).map(Self)
    }

    /// `x` of shape (.., inputs) times the matrix: (.., outputs), f32.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.0 {
            QMatMul::QTensor(weight) if weight.dtype() == GgmlDType::Q4K => {
                let (outputs, inputs) = weight.shape().dims2()?;
                if x.elem_count() != inputs {
                    return self.0.forward(x);
                }
                let row = x.flatten_all()?.to_vec1::<f32>()?;
                let bytes = weight.data()?;
                let mut product = vec![0f32; outputs];
                k_quants::matmul(
                    (1, inputs, outputs),
                    &row,
                    q4k_blocks(&bytes)?,
                    &mut product,
                )?;
                let mut dims = x.dims().to_vec();
                if let Some(last) = dims.last_mut() {
                    *last = outputs;
                }
                Tensor::from_vec(product, dims, x.device())
            }
            _ => self.0.forward(x),
        }
    }
}

/// The `Q4_K` blocks a quantized tensor's bytes hold.
fn q4k_blocks(bytes: &[u8]) -> Result<&[BlockQ4K]> {
    let size = std::mem::size_of::<BlockQ4K>();
    let aligned = bytes
        .as_ptr()
        .align_offset(std::mem::align_of::<BlockQ4K>())
        == 0;
    if !aligned || !bytes.len().is_multiple_of(size) {
        candle_core::bail!("a Q4_K tensor's storage is not a whole number of aligned blocks");
    }
    // SAFETY: the pointer is aligned for `BlockQ4K` and the bytes hold `len / size` whole
    // blocks (both checked above); a block is plain integers and f16 values, for which
    // every bit pattern is valid; the slice borrows `bytes`, so it lives no longer.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), bytes.len() / size) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// One row through the stored blocks gives what candle's repacked path gives, and
    /// many rows still take candle's path.
    #[test]
    fn one_row_is_multiplied_against_the_stored_blocks_as_candle_would() -> Result<()> {
        let (outputs, inputs) = (48, 512);
        let values: Vec<f32> = (0..outputs * inputs)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let dense = Tensor::from_vec(values, (outputs, inputs), &Device::Cpu)?;
        let quantized = QTensor::quantize(&dense, GgmlDType::Q4K)?;
        let reference = QMatMul::from_qtensor(QTensor::quantize(&dense, GgmlDType::Q4K)?)?;
        let matrix = Matrix::new(quantized)?;
        let rows: Vec<f32> = (0..3 * inputs)
            .map(|i| (i % 17) as f32 / 17.0 - 0.5)
            .collect();
        let rows = Tensor::from_vec(rows, (1, 3, inputs), &Device::Cpu)?;
        let one = rows.narrow(1, 1, 1)?;

        let ours = matrix.forward(&one)?;
        assert_eq!(ours.dims(), &[1, 1, outputs]);
        let theirs = reference.forward(&one)?;
        let gap = (ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = theirs.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            scale > 1.0 && gap <= scale * 1e-5,
            "gap {gap} at scale {scale}"
        );

        let many = matrix.forward(&rows)?;
        assert_eq!(many.dims(), &[1, 3, outputs]);
        let middle = many.narrow(1, 1, 1)?;
        let gap = (middle - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(gap <= scale * 1e-5, "gap {gap} at scale {scale}");
        Ok(())
    }
}
