using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>
/// Adam that updates only the rows a batch touched (lazy Adam): moments and weights of other rows
/// stay as they are. L2 weight decay is added to the gradient of the touched rows. The step count
/// used for bias correction is global, as in sparse Adam implementations.
/// </summary>
public sealed class RowSparseAdam : IDisposable
{
    private readonly Tensor _table;
    private readonly Tensor _m;
    private readonly Tensor _v;
    private readonly double _lr, _beta1, _beta2, _eps, _weightDecay;
    public long Steps { get; private set; }

    public RowSparseAdam(Tensor table, double lr, double weightDecay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _table = table;
        _m = torch.zeros_like(table);
        _v = torch.zeros_like(table);
        _lr = lr; _weightDecay = weightDecay; _beta1 = beta1; _beta2 = beta2; _eps = eps;
    }

    /// <summary>rowIds: unique row indices; gradRows: [rows, d] gradients for them.</summary>
    public void Step(Tensor rowIds, Tensor gradRows)
    {
        Steps++;
        if (CanUpdateInPlace(rowIds, gradRows)) StepInPlace(rowIds, gradRows);
        else StepWithTensorOps(rowIds, gradRows);
    }

    private bool CanUpdateInPlace(Tensor rowIds, Tensor gradRows) =>
        _table.device_type == DeviceType.CPU && gradRows.device_type == DeviceType.CPU
        && _table.dtype == ScalarType.Float32 && gradRows.dtype == ScalarType.Float32 && rowIds.dtype == ScalarType.Int64
        && _table.is_contiguous() && _m.is_contiguous() && _v.is_contiguous() && _table.dim() == 2;

    /// <summary>
    /// CPU fast path: one pass over each touched row of weights, moments and gradient, written in
    /// place. The tensor form below gathers the rows, runs about ten whole-batch operations and
    /// scatters them back, which cost more than the rest of a BPR step. Rows are independent, so
    /// the result does not depend on the thread count.
    /// </summary>
    private unsafe void StepInPlace(Tensor rowIds, Tensor gradRows)
    {
        using var _ = torch.no_grad();
        var ids = rowIds.is_contiguous() ? rowIds : rowIds.contiguous();
        var grads = gradRows.is_contiguous() ? gradRows : gradRows.contiguous();
        int rows = (int)ids.shape[0], d = (int)_table.shape[1];
        var p = new Update
        {
            D = d,
            Beta1 = (float)_beta1, Beta2 = (float)_beta2, Decay = (float)_weightDecay, Eps = (float)_eps,
            StepSize = (float)(_lr / (1 - Math.Pow(_beta1, Steps))),
            InvCorrection2 = (float)(1 / (1 - Math.Pow(_beta2, Steps))),
        };
        fixed (byte* w = _table.bytes, m = _m.bytes, v = _v.bytes, g = grads.bytes, r = ids.bytes)
        {
            p.W = (float*)w; p.M = (float*)m; p.V = (float*)v; p.G = (float*)g; p.Rows = (long*)r;
            RowChunks.Run(rows, 256, p.Run);
        }
        if (!ReferenceEquals(ids, rowIds)) ids.Dispose();
        if (!ReferenceEquals(grads, gradRows)) grads.Dispose();
    }

    private unsafe struct Update
    {
        public float* W, M, V, G;
        public long* Rows;
        public int D;
        public float Beta1, Beta2, Decay, Eps, StepSize, InvCorrection2;

        public readonly void Run(int from, int to)
        {
            int width = Vector<float>.Count;
            var b1 = new Vector<float>(Beta1); var c1 = new Vector<float>(1 - Beta1);
            var b2 = new Vector<float>(Beta2); var c2 = new Vector<float>(1 - Beta2);
            var decay = new Vector<float>(Decay); var eps = new Vector<float>(Eps);
            var step = new Vector<float>(StepSize); var inv2 = new Vector<float>(InvCorrection2);
            for (int i = from; i < to; i++)
            {
                long row = Rows[i] * D;
                float* w = W + row, m = M + row, v = V + row, g = G + (long)i * D;
                int j = 0;
                for (; j <= D - width; j += width)
                {
                    var wj = Unsafe.ReadUnaligned<Vector<float>>(w + j);
                    var gj = Unsafe.ReadUnaligned<Vector<float>>(g + j) + decay * wj;
                    var mj = b1 * Unsafe.ReadUnaligned<Vector<float>>(m + j) + c1 * gj;
                    var vj = b2 * Unsafe.ReadUnaligned<Vector<float>>(v + j) + c2 * gj * gj;
                    Unsafe.WriteUnaligned(m + j, mj);
                    Unsafe.WriteUnaligned(v + j, vj);
                    Unsafe.WriteUnaligned(w + j, wj - step * mj / (Vector.SquareRoot(vj * inv2) + eps));
                }
                for (; j < D; j++)
                {
                    float gj = g[j] + Decay * w[j];
                    m[j] = Beta1 * m[j] + (1 - Beta1) * gj;
                    v[j] = Beta2 * v[j] + (1 - Beta2) * gj * gj;
                    w[j] -= StepSize * m[j] / (MathF.Sqrt(v[j] * InvCorrection2) + Eps);
                }
            }
        }
    }

    private void StepWithTensorOps(Tensor rowIds, Tensor gradRows)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        // Scalars held by `using` until the step ends, not left to the finalizer (see FixedScalars).
        double bc1 = 1 - Math.Pow(_beta1, Steps), bc2 = 1 - Math.Pow(_beta2, Steps);
        using Scalar decay = _weightDecay, beta1 = _beta1, oneMinusBeta1 = 1 - _beta1, beta2 = _beta2,
            oneMinusBeta2 = 1 - _beta2, correction2 = bc2, eps = _eps, stepSize = -_lr / bc1;
        var w = _table.index_select(0, rowIds);
        var g = _weightDecay != 0 ? gradRows.add(w, alpha: decay) : gradRows;
        var m = _m.index_select(0, rowIds).mul_(beta1).add_(g, alpha: oneMinusBeta1);
        var v = _v.index_select(0, rowIds).mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
        _m.index_copy_(0, rowIds, m);
        _v.index_copy_(0, rowIds, v);
        var denom = v.div(correction2).sqrt_().add_(eps);
        w.addcdiv_(m, denom, value: stepSize);
        _table.index_copy_(0, rowIds, w);
    }

    /// <summary>First and second moments, one row per table row (for checkpoints).</summary>
    public Tensor FirstMoment => _m;
    public Tensor SecondMoment => _v;

    /// <summary>Puts back the state a checkpoint saved.</summary>
    public void Restore(Tensor m, Tensor v, long steps)
    {
        using var _ = torch.no_grad();
        _m.copy_(m);
        _v.copy_(v);
        Steps = steps;
    }

    public void Dispose()
    {
        _m.Dispose();
        _v.Dispose();
    }
}
