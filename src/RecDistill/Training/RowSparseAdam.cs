using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>How the optimizer treats the rows a batch does not touch.</summary>
public enum SparseAdamMode
{
    /// <summary>Lazy Adam (SPEC's protocol): untouched rows keep their weights and moments.</summary>
    Lazy,
    /// <summary>
    /// Dense Adam's result (L2 decay and momentum move every row at every step), computed lazily:
    /// a row's skipped steps are replayed when the batch next touches it and at each epoch's end.
    /// </summary>
    Exact,
}

/// <summary>
/// Adam over the rows of an embedding table that a batch touched. L2 weight decay is added to the
/// gradient of the touched rows. The step count used for bias correction is global, as in sparse
/// Adam implementations. <see cref="SparseAdamMode.Exact"/> also replays, per row, the steps it
/// missed with the only gradient those steps had (weight decay), so that the table ends where dense
/// Adam would leave it while the work stays one fused in-place pass per row.
/// </summary>
public sealed class RowSparseAdam : IDisposable
{
    private readonly Tensor _table;
    private readonly Tensor _m;
    private readonly Tensor _v;
    private readonly double _lr, _beta1, _beta2, _eps, _weightDecay;
    // Exact mode: the last step each row has been brought to, and the per-step bias corrections
    // (index t = step t) that a replay needs.
    private readonly long[]? _rowStep;
    private readonly List<float> _stepSize = new() { 0 }, _invCorrection2 = new() { 0 };
    /// <summary>Steps taken (the bias corrections' t).</summary>
    public long Steps { get; private set; }
    /// <summary>Lazy (untouched rows keep their weights and moments) or exact (dense Adam's result).</summary>
    public SparseAdamMode Mode { get; }

    /// <summary>Adam over the rows of <paramref name="table"/>, updated in place; moments start at zero.</summary>
    public RowSparseAdam(Tensor table, double lr, double weightDecay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        SparseAdamMode mode = SparseAdamMode.Lazy)
    {
        _table = table;
        _m = torch.zeros_like(table);
        _v = torch.zeros_like(table);
        _lr = lr; _weightDecay = weightDecay; _beta1 = beta1; _beta2 = beta2; _eps = eps;
        Mode = mode;
        if (mode == SparseAdamMode.Exact) _rowStep = new long[table.shape[0]];
    }

    /// <summary>rowIds: unique row indices; gradRows: [rows, d] gradients for them.</summary>
    public void Step(Tensor rowIds, Tensor gradRows)
    {
        Steps++;
        if (_rowStep is not null) ExtendCorrections(Steps);
        if (CanUpdateInPlace(rowIds, gradRows)) StepInPlace(rowIds, gradRows);
        else if (_rowStep is null) StepWithTensorOps(rowIds, gradRows);
        else
        {
            // Off the CPU fast path the exact mode is plain dense Adam over the whole table.
            using var scope = torch.NewDisposeScope();
            var full = torch.zeros_like(_table).index_copy_(0, rowIds, gradRows);
            StepWithTensorOps(FixedScalars.Arange(_table.shape[0], ScalarType.Int64, _table.device), full);
            Array.Fill(_rowStep, Steps);
        }
    }

    /// <summary>One step on every row of the table: gradRows [rows, d] (the dense optimizer's step).</summary>
    public void StepAll(Tensor gradRows)
    {
        Steps++;
        if (_rowStep is not null) ExtendCorrections(Steps);
        if (CanUpdateInPlace(null, gradRows) && gradRows.shape[0] == _table.shape[0])
            StepInPlace(null, gradRows);
        else
        {
            using var ids = FixedScalars.Arange(_table.shape[0], ScalarType.Int64, _table.device);
            StepWithTensorOps(ids, gradRows);
        }
        if (_rowStep is not null) Array.Fill(_rowStep, Steps);
    }

    /// <summary>
    /// Exact mode: brings every row to the current step (the weights are then dense Adam's). The
    /// trainer calls it before each validation and checkpoint; a no-op in lazy mode.
    /// </summary>
    public unsafe void Synchronize()
    {
        if (_rowStep is null || Steps == 0) return;
        using var _ = torch.no_grad();
        var p = NewUpdate((int)_table.shape[1]);
        fixed (byte* w = _table.bytes, m = _m.bytes, v = _v.bytes)
        fixed (long* rowStep = _rowStep)
        fixed (float* stepSize = CollectionsMarshal.AsSpan(_stepSize), inv2 = CollectionsMarshal.AsSpan(_invCorrection2))
        {
            p.W = (float*)w; p.M = (float*)m; p.V = (float*)v; p.RowStep = rowStep;
            p.StepSizes = stepSize; p.InvCorrections2 = inv2; p.Step = Steps;
            RowChunks.Run((int)_table.shape[0], 256, p.CatchUpAll);
        }
    }

    private bool CanUpdateInPlace(Tensor? rowIds, Tensor gradRows) =>
        _table.device_type == DeviceType.CPU && gradRows.device_type == DeviceType.CPU
        && _table.dtype == ScalarType.Float32 && gradRows.dtype == ScalarType.Float32 && (rowIds is null || rowIds.dtype == ScalarType.Int64)
        && _table.is_contiguous() && _m.is_contiguous() && _v.is_contiguous() && _table.dim() == 2;

    /// <summary>
    /// CPU fast path: one pass over each touched row of weights, moments and gradient, written in
    /// place. The tensor form below gathers the rows, runs about ten whole-batch operations and
    /// scatters them back, which cost more than the rest of a BPR step. Rows are independent, so
    /// the result does not depend on the thread count. rowIds null: every row of the table, in order.
    /// </summary>
    private unsafe void StepInPlace(Tensor? rowIds, Tensor gradRows)
    {
        using var _ = torch.no_grad();
        var ids = rowIds is null || rowIds.is_contiguous() ? rowIds : rowIds.contiguous();
        var grads = gradRows.is_contiguous() ? gradRows : gradRows.contiguous();
        int rows = (int)(ids?.shape[0] ?? _table.shape[0]);
        var p = NewUpdate((int)_table.shape[1]);
        fixed (byte* w = _table.bytes, m = _m.bytes, v = _v.bytes, g = grads.bytes, r = ids is null ? Span<byte>.Empty : ids.bytes)
        fixed (long* rowStep = _rowStep)
        fixed (float* stepSize = CollectionsMarshal.AsSpan(_stepSize), inv2 = CollectionsMarshal.AsSpan(_invCorrection2))
        {
            p.W = (float*)w; p.M = (float*)m; p.V = (float*)v; p.G = (float*)g; p.Rows = (long*)r;
            p.RowStep = rowStep; p.StepSizes = stepSize; p.InvCorrections2 = inv2; p.Step = Steps;
            RowChunks.Run(rows, 256, p.Run);
        }
        if (!ReferenceEquals(ids, rowIds)) ids!.Dispose();
        if (!ReferenceEquals(grads, gradRows)) grads.Dispose();
    }

    private Update NewUpdate(int d) => new()
    {
        D = d,
        Beta1 = (float)_beta1, Beta2 = (float)_beta2, Decay = (float)_weightDecay, Eps = (float)_eps,
        StepSize = StepSizeAt(Steps),
        InvCorrection2 = InvCorrection2At(Steps),
    };

    // Adam's bias corrections at step t: lr / (1 - beta1^t) and 1 / (1 - beta2^t).
    private float StepSizeAt(long t) => (float)(_lr / (1 - Math.Pow(_beta1, t)));
    private float InvCorrection2At(long t) => (float)(1 / (1 - Math.Pow(_beta2, t)));

    /// <summary>Exact mode: the per-step corrections a replay reads, up to step `upTo`.</summary>
    private void ExtendCorrections(long upTo)
    {
        for (long t = _stepSize.Count; t <= upTo; t++)
        {
            _stepSize.Add(StepSizeAt(t));
            _invCorrection2.Add(InvCorrection2At(t));
        }
    }

    private unsafe struct Update
    {
        public float* W, M, V, G;
        public long* Rows; // null: row i is table row i
        public int D;
        public float Beta1, Beta2, Decay, Eps, StepSize, InvCorrection2;
        // Exact mode only (RowStep null in lazy mode).
        public long* RowStep;
        public float* StepSizes, InvCorrections2;
        public long Step;

        public readonly void Run(int from, int to)
        {
            int width = Vector<float>.Count;
            var b1 = new Vector<float>(Beta1); var c1 = new Vector<float>(1 - Beta1);
            var b2 = new Vector<float>(Beta2); var c2 = new Vector<float>(1 - Beta2);
            var decay = new Vector<float>(Decay); var eps = new Vector<float>(Eps);
            var step = new Vector<float>(StepSize); var inv2 = new Vector<float>(InvCorrection2);
            for (int i = from; i < to; i++)
            {
                long id = Rows is null ? i : Rows[i];
                long row = id * D;
                if (Rows is not null && i + PrefetchAhead < to) Prefetch(Rows[i + PrefetchAhead] * D);
                if (RowStep is not null)
                {
                    CatchUp(row, RowStep[id] + 1, Step - 1);
                    RowStep[id] = Step;
                }
                float* w = W + row, m = M + row, v = V + row, g = G + (long)i * D;
                int j = 0;
                // The same arithmetic 16 lanes at a time where AVX-512 is there (Vector<float> has 8 here);
                // every operation is elementwise and correctly rounded, so the width does not change the result.
                if (Vector512.IsHardwareAccelerated)
                    for (; j <= D - 16; j += 16)
                    {
                        var wj = Vector512.Load(w + j);
                        var gj = Vector512.Load(g + j) + Vector512.Create(Decay) * wj;
                        var mj = Vector512.Create(Beta1) * Vector512.Load(m + j) + Vector512.Create(1 - Beta1) * gj;
                        var vj = Vector512.Create(Beta2) * Vector512.Load(v + j) + Vector512.Create(1 - Beta2) * gj * gj;
                        mj.Store(m + j);
                        vj.Store(v + j);
                        (wj - Vector512.Create(StepSize) * mj / (Vector512.Sqrt(vj * Vector512.Create(InvCorrection2)) + Vector512.Create(Eps))).Store(w + j);
                    }
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

        // The touched rows lie scattered over tables larger than the caches: the hardware prefetcher
        // follows a row but not the jump to the next one. Asking for the rows two ahead halves the
        // step (3,700 rows of 200 in CiteULike's item table: 1.33 -> 0.68 ms on one thread).
        private const int PrefetchAhead = 2;

        private readonly void Prefetch(long row)
        {
            CacheLines.PrefetchRow(W + row, D);
            CacheLines.PrefetchRow(M + row, D);
            CacheLines.PrefetchRow(V + row, D);
        }

        /// <summary>Rows [from, to) of the table brought to the current step.</summary>
        public readonly void CatchUpAll(int from, int to)
        {
            for (int r = from; r < to; r++)
            {
                CatchUp((long)r * D, RowStep[r] + 1, Step);
                RowStep[r] = Step;
            }
        }

        /// <summary>
        /// Replays steps first..last on one row (offset row) as dense Adam ran them: the data gradient
        /// was zero, so the gradient is the L2 term alone. Each slice of the row stays in registers for
        /// all replayed steps.
        /// </summary>
        private readonly void CatchUp(long row, long first, long last)
        {
            if (first > last) return;
            int width = Vector<float>.Count;
            var b1 = new Vector<float>(Beta1); var c1 = new Vector<float>(1 - Beta1);
            var b2 = new Vector<float>(Beta2); var c2 = new Vector<float>(1 - Beta2);
            var decay = new Vector<float>(Decay); var eps = new Vector<float>(Eps);
            float* w = W + row, m = M + row, v = V + row;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                // Four slices side by side: each step of a slice waits for its previous step's square root
                // and division, so one slice at a time left the units idle most of the time. The same
                // operations on every element, so the same results.
                var beta1 = Vector512.Create(Beta1); var oneMinusBeta1 = Vector512.Create(1 - Beta1);
                var beta2 = Vector512.Create(Beta2); var oneMinusBeta2 = Vector512.Create(1 - Beta2);
                var decay16 = Vector512.Create(Decay); var eps16 = Vector512.Create(Eps);
                for (; j <= D - 64; j += 64)
                {
                    var w0 = Vector512.Load(w + j); var w1 = Vector512.Load(w + j + 16);
                    var w2 = Vector512.Load(w + j + 32); var w3 = Vector512.Load(w + j + 48);
                    var m0 = Vector512.Load(m + j); var m1 = Vector512.Load(m + j + 16);
                    var m2 = Vector512.Load(m + j + 32); var m3 = Vector512.Load(m + j + 48);
                    var v0 = Vector512.Load(v + j); var v1 = Vector512.Load(v + j + 16);
                    var v2 = Vector512.Load(v + j + 32); var v3 = Vector512.Load(v + j + 48);
                    for (long t = first; t <= last; t++)
                    {
                        var size = Vector512.Create(StepSizes[t]);
                        var inv2 = Vector512.Create(InvCorrections2[t]);
                        DecayStep(ref w0, ref m0, ref v0, decay16, beta1, oneMinusBeta1, beta2, oneMinusBeta2, size, inv2, eps16);
                        DecayStep(ref w1, ref m1, ref v1, decay16, beta1, oneMinusBeta1, beta2, oneMinusBeta2, size, inv2, eps16);
                        DecayStep(ref w2, ref m2, ref v2, decay16, beta1, oneMinusBeta1, beta2, oneMinusBeta2, size, inv2, eps16);
                        DecayStep(ref w3, ref m3, ref v3, decay16, beta1, oneMinusBeta1, beta2, oneMinusBeta2, size, inv2, eps16);
                    }
                    w0.Store(w + j); w1.Store(w + j + 16); w2.Store(w + j + 32); w3.Store(w + j + 48);
                    m0.Store(m + j); m1.Store(m + j + 16); m2.Store(m + j + 32); m3.Store(m + j + 48);
                    v0.Store(v + j); v1.Store(v + j + 16); v2.Store(v + j + 32); v3.Store(v + j + 48);
                }
                for (; j <= D - 16; j += 16)
                {
                    var wj = Vector512.Load(w + j);
                    var mj = Vector512.Load(m + j);
                    var vj = Vector512.Load(v + j);
                    for (long t = first; t <= last; t++)
                        DecayStep(ref wj, ref mj, ref vj, decay16, beta1, oneMinusBeta1, beta2, oneMinusBeta2,
                            Vector512.Create(StepSizes[t]), Vector512.Create(InvCorrections2[t]), eps16);
                    wj.Store(w + j);
                    mj.Store(m + j);
                    vj.Store(v + j);
                }
            }
            for (; j <= D - width; j += width)
            {
                var wj = Unsafe.ReadUnaligned<Vector<float>>(w + j);
                var mj = Unsafe.ReadUnaligned<Vector<float>>(m + j);
                var vj = Unsafe.ReadUnaligned<Vector<float>>(v + j);
                for (long t = first; t <= last; t++)
                {
                    var gj = decay * wj;
                    mj = b1 * mj + c1 * gj;
                    vj = b2 * vj + c2 * gj * gj;
                    wj -= new Vector<float>(StepSizes[t]) * mj / (Vector.SquareRoot(vj * new Vector<float>(InvCorrections2[t])) + eps);
                }
                Unsafe.WriteUnaligned(w + j, wj);
                Unsafe.WriteUnaligned(m + j, mj);
                Unsafe.WriteUnaligned(v + j, vj);
            }
            for (; j < D; j++)
            {
                for (long t = first; t <= last; t++)
                {
                    float gj = Decay * w[j];
                    m[j] = Beta1 * m[j] + (1 - Beta1) * gj;
                    v[j] = Beta2 * v[j] + (1 - Beta2) * gj * gj;
                    w[j] -= StepSizes[t] * m[j] / (MathF.Sqrt(v[j] * InvCorrections2[t]) + Eps);
                }
            }
        }
    }

    /// <summary>One replayed step of 16 elements whose data gradient was zero (the L2 term alone).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DecayStep(ref Vector512<float> w, ref Vector512<float> m, ref Vector512<float> v, Vector512<float> decay,
        Vector512<float> beta1, Vector512<float> oneMinusBeta1, Vector512<float> beta2, Vector512<float> oneMinusBeta2,
        Vector512<float> stepSize, Vector512<float> invCorrection2, Vector512<float> eps)
    {
        var g = decay * w;
        m = beta1 * m + oneMinusBeta1 * g;
        v = beta2 * v + oneMinusBeta2 * g * g;
        w -= stepSize * m / (Vector512.Sqrt(v * invCorrection2) + eps);
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
        var denom = v.div(correction2).sqrt_().add_(eps, alpha: FixedScalars.Of(1));
        w.addcdiv_(m, denom, value: stepSize);
        _table.index_copy_(0, rowIds, w);
    }

    /// <summary>First and second moments, one row per table row (for checkpoints).</summary>
    public Tensor FirstMoment => _m;
    /// <summary>Second moment, one row per table row (for checkpoints).</summary>
    public Tensor SecondMoment => _v;

    /// <summary>Puts back the state a checkpoint saved.</summary>
    public void Restore(Tensor m, Tensor v, long steps)
    {
        using var _ = torch.no_grad();
        _m.copy_(m);
        _v.copy_(v);
        Steps = steps;
        if (_rowStep is null) return;
        // Checkpoints are written after Synchronize: every row stood at the saved step.
        Array.Fill(_rowStep, steps);
        ExtendCorrections(steps);
    }

    /// <summary>Frees the moments.</summary>
    public void Dispose()
    {
        _m.Dispose();
        _v.Dispose();
    }
}
