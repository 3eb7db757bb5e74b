using System.Buffers;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp;
using static TorchSharp.torch;

using RecDistill.Distillation;

namespace RecDistill.Kernels;

/// <summary>
/// HTD's loss of one set of entities as one autograd function on the CPU, both levels and the cosine
/// normalisations, with the gradient for the projected student rows computed in the same pass:
/// alpha * (sum over groups of ||T_g T_g^T - S_g S_g^T||^2) + (1 - alpha) * ||C_T - C_S||^2, where T, S
/// are the normalised teacher and projected rows, T_g, S_g a group's rows, and C the cosines of every
/// entity to every group's prototype (the normalised mean of the group's raw rows).
/// Through libtorch the entity level cost about fifteen calls per group forward and backward (30
/// groups of users and 30 of items per batch) and the prototype level, with its normalisations and
/// scatter sums, some 5 ms per batch of items for about 1 ms of arithmetic.
/// Groups past 2d members use the d x d form (see <see cref="HierarchicalTopologyDistillation.GroupBlockLoss"/>):
/// loss ||T^T T||^2 - 2 ||T^T S||^2 + ||S^T S||^2, gradient 4 (S (S^T S) - T (T^T S)).
/// Each group and each row is computed by one thread and sums run in a fixed order, so the result
/// does not depend on the thread count.
/// </summary>
internal sealed class TopologyLoss : torch.autograd.SingleTensorFunction<TopologyLoss>
{
    /// <summary>The normalisations' floor on a vector's length, as libtorch's normalize.</summary>
    private const float Eps = 1e-12f;

    public override string Name => nameof(TopologyLoss);

    /// <summary>Whether the kernel runs for these inputs (CPU, float32, AVX-512); otherwise use libtorch.</summary>
    public static bool Supports(Tensor teacher, Tensor projected) => Sgemm.IsSupported && TensorOps.Float32OnCpu(teacher, projected);

    /// <summary>
    /// teacher [n, d] (raw rows, no gradient), projected [n, d] (raw projected student rows); order [n]
    /// lists the rows group by group and sizes[g] is group g's size (as <see cref="TensorOps.GroupByLabel"/>
    /// returns them); alpha weighs the entity level, 1 - alpha the prototype level. A scalar.
    /// </summary>
    public static Tensor Compute(Tensor teacher, Tensor projected, Tensor order, long[] sizes, double alpha)
    {
        if (!Supports(teacher, projected)) throw new ArgumentException("TopologyLoss runs on float32 CPU tensors with AVX-512; use libtorch otherwise");
        if (teacher.dim() != 2 || projected.dim() != 2 || teacher.shape[0] != projected.shape[0] || teacher.shape[1] != projected.shape[1])
            throw new ArgumentException($"TopologyLoss: teacher [{string.Join(", ", teacher.shape)}] and projected [{string.Join(", ", projected.shape)}] do not fit");
        if (order.numel() != projected.shape[0] || sizes.Sum() != projected.shape[0])
            throw new ArgumentException("TopologyLoss: the groups must cover every row once");
        if (alpha is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(alpha), "alpha must lie in [0, 1]");
        return apply(teacher, projected, order.to(ScalarType.Int64), torch.tensor(sizes), torch.tensor(new[] { alpha }, ScalarType.Float64));
    }

    public override unsafe Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var order = (Tensor)vars[2];
        var sizes = TensorCopy.ToArray<long>((Tensor)vars[3]);
        float alpha = (float)((Tensor)vars[4]).item<double>();
        // The inputs are read in place through order (no gathered copies): the normalised rows and the
        // gradient's buffers below are in group order, so that each group is one contiguous block, and
        // the gradient is written back in the input's row order.
        var t = ((Tensor)vars[0]).detach().contiguous();
        var p = ((Tensor)vars[1]).detach().contiguous();
        var ord = TensorCopy.ToArray<long>(order);
        int n = (int)p.shape[0], d = (int)p.shape[1], groups = sizes.Length;
        var offsets = new int[groups + 1];
        for (int g = 0; g < groups; g++) offsets[g + 1] = offsets[g] + (int)sizes[g];

        var tn = torch.empty(n, d);                  // normalised rows
        var sn = torch.empty(n, d);
        var length = new float[n];                   // projected rows' lengths (floored at Eps)
        var protoT = torch.zeros(groups, d);         // normalised group means
        var protoS = torch.zeros(groups, d);
        var meanLength = new float[groups];          // projected group means' lengths (floored)
        var diff = torch.empty(n, groups);           // teacher minus student cosines to the prototypes
        var studentCos = torch.empty(n, groups);
        var dSn = torch.empty(n, d);                 // gradient with respect to sn
        var dProto = torch.empty(groups, d);         // ... to the student prototypes
        // Written whole below (no zero fill): each group's block writes its rows' entity-level
        // gradient (a lone entity's row is cleared), the prototype level every row's share.
        var entityGrad = torch.empty(n, d);
        var grad = torch.empty(n, d);                // ... to the projected rows (the input's row order)
        var entityLosses = new double[groups];
        double prototypeLoss;
        fixed (byte* tb = t.bytes, pb = p.bytes, tnb = tn.bytes, snb = sn.bytes, ptb = protoT.bytes, psb = protoS.bytes,
               db = diff.bytes, scb = studentCos.bytes, dsb = dSn.bytes, dpb = dProto.bytes, eb = entityGrad.bytes, gb = grad.bytes)
        fixed (float* lp = length, mlp = meanLength)
        fixed (long* op = ord)
        {
            nint T = (nint)tb, P = (nint)pb, Tn = (nint)tnb, Sn = (nint)snb, Lp = (nint)lp, E = (nint)eb, O = (nint)op;
            RowChunks.Run(n, 512, (from, to) =>
            {
                for (int i = from; i < to; i++)
                {
                    long row = ((long*)O)[i] * d;
                    Normalize((float*)T + row, (float*)Tn + (long)i * d, d);
                    ((float*)Lp)[i] = Normalize((float*)P + row, (float*)Sn + (long)i * d, d);
                }
            });
            for (int g = 0; g < groups; g++)
            {
                if (sizes[g] == 0) continue;
                Mean((float*)tb, op + offsets[g], (int)sizes[g], d, (float*)ptb + (long)g * d);
                Mean((float*)pb, op + offsets[g], (int)sizes[g], d, (float*)psb + (long)g * d);
                Normalize((float*)ptb + (long)g * d, (float*)ptb + (long)g * d, d);
                mlp[g] = Normalize((float*)psb + (long)g * d, (float*)psb + (long)g * d, d);
            }

            // Prototype level. B(k, j) = proto[j, k]: the prototypes read transposed in place.
            var dc = new Span<float>(db, n * groups);
            Sgemm.Multiply((float*)tnb, d, 1, (float*)ptb, 1, d, (float*)db, n, d, groups);
            Sgemm.Multiply((float*)snb, d, 1, (float*)psb, 1, d, (float*)scb, n, d, groups);
            TensorPrimitives.Subtract(dc, new ReadOnlySpan<float>(scb, n * groups), dc);
            prototypeLoss = TensorPrimitives.SumOfSquares<float>(dc);
            // d loss / d student cosines = -2 (1 - alpha) diff; to sn through the prototypes, and to the
            // prototypes (A(i, k) = dc[k, i]: dc read transposed in place).
            TensorPrimitives.Multiply(dc, -2 * (1 - alpha), dc);
            Sgemm.Multiply((float*)db, groups, 1, (float*)psb, d, 1, (float*)dsb, n, groups, d);
            Sgemm.Multiply((float*)db, 1, groups, (float*)snb, d, 1, (float*)dpb, groups, n, d);
            for (int g = 0; g < groups; g++)
            {
                if (sizes[g] == 0) continue;
                // Through the normalisation and the mean: every member gets the same share.
                float* dm = (float*)dpb + (long)g * d;
                NormalizeBackward(dm, (float*)psb + (long)g * d, mlp[g], d);
                TensorPrimitives.Multiply(new Span<float>(dm, d), 1f / sizes[g], new Span<float>(dm, d));
                for (int i = offsets[g]; i < offsets[g + 1]; i++)
                    new ReadOnlySpan<float>(dm, d).CopyTo(new Span<float>((float*)gb + op[i] * d, d));
            }

            // Entity level, group by group (the costliest first, see RowChunks.RunPieces).
            RowChunks.RunPieces(sizes.Select(m => EntityCost(m, d)).ToArray(), g =>
            {
                int size = (int)sizes[g];
                long at = (long)offsets[g] * d;
                // A lone entity's only pair is itself: both similarities are 1, the error is 0.
                if (size < 2) { new Span<float>((float*)E + at, size * d).Clear(); return; }
                entityLosses[g] = HierarchicalTopologyDistillation.UsesGramForm(size, d)
                    ? GramBlock((float*)Tn + at, (float*)Sn + at, (float*)E + at, size, d)
                    : PairBlock((float*)Tn + at, (float*)Sn + at, (float*)E + at, size, d);
            });

            // Both levels' gradients with respect to sn, then through the rows' normalisation.
            nint Ds = (nint)dsb, G = (nint)gb;
            RowChunks.Run(n, 512, (from, to) =>
            {
                for (int i = from; i < to; i++)
                {
                    long at = (long)i * d;
                    var row = new Span<float>((float*)Ds + at, d);
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>((float*)E + at, d), alpha, row, row);
                    NormalizeBackward((float*)Ds + at, (float*)Sn + at, ((float*)Lp)[i], d);
                    var target = new Span<float>((float*)G + ((long*)O)[i] * d, d);
                    TensorPrimitives.Add(target, row, target);
                }
            });
        }
        double entityLoss = 0;
        foreach (var l in entityLosses) entityLoss += l;
        foreach (var x in new[] { t, p, tn, sn, protoT, protoS, diff, studentCos, dSn, dProto, entityGrad }) x.Dispose();
        ctx.save_for_backward(new List<Tensor> { grad });
        return torch.tensor((float)(alpha * entityLoss + (1 - alpha) * prototypeLoss));
    }

    public override unsafe List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var grad = ctx.get_saved_variables()[0];
        float scale = gradOutput.to(ScalarType.Float32).item<float>();
        var gs = torch.empty_like(grad);
        int n = (int)grad.shape[0], d = (int)grad.shape[1];
        fixed (byte* gp = grad.bytes, sp = gs.bytes)
        {
            nint G = (nint)gp, S = (nint)sp;
            RowChunks.Run(n, 512, (from, to) =>
                TensorPrimitives.Multiply(new ReadOnlySpan<float>((float*)G + (long)from * d, (to - from) * d), scale,
                    new Span<float>((float*)S + (long)from * d, (to - from) * d)));
        }
        return new List<Tensor> { null!, gs, null!, null!, null! };
    }

    /// <summary>
    /// Multiply-adds of a group's entity level, forward and gradient: the n x n form about 2 m^2 d, the
    /// d x d form 4 m d^2; a lone entity's only the clearing of its row.
    /// </summary>
    internal static long EntityCost(long members, long d) =>
        members < 2 ? members * d : HierarchicalTopologyDistillation.UsesGramForm(members, d) ? 4 * members * d * d : 2 * members * members * d;

    /// <summary>y = x / max(|x|, Eps) (y may be x); returns the divisor.</summary>
    private static unsafe float Normalize(float* x, float* y, int d)
    {
        float length = Math.Max(MathF.Sqrt(TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(x, d))), Eps);
        TensorPrimitives.Multiply(new ReadOnlySpan<float>(x, d), 1f / length, new Span<float>(y, d));
        return length;
    }

    /// <summary>
    /// In place, the gradient g with respect to y = normalize(x) turned into the gradient with respect
    /// to x, given y and the divisor: (g - y (g . y)) / |x|; below the floor the divisor is a constant, g / Eps.
    /// </summary>
    private static unsafe void NormalizeBackward(float* g, float* y, float length, int d)
    {
        var gs = new Span<float>(g, d);
        if (length > Eps)
        {
            float dot = TensorPrimitives.Dot(new ReadOnlySpan<float>(g, d), new ReadOnlySpan<float>(y, d));
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(y, d), -dot, gs, gs);
        }
        TensorPrimitives.Multiply(gs, 1f / length, gs);
    }

    /// <summary>mean[k] = the average of the rows x[index[0]], .., x[index[rows - 1]] (d wide), summed in that order.</summary>
    private static unsafe void Mean(float* x, long* index, int rows, int d, float* mean)
    {
        var m = new Span<float>(mean, d);
        m.Clear();
        for (int i = 0; i < rows; i++) TensorPrimitives.Add(m, new ReadOnlySpan<float>(x + index[i] * d, d), m);
        TensorPrimitives.Multiply(m, 1f / rows, m);
    }

    /// <summary>Rows of the tiles of <see cref="SymmetricProduct"/>.</summary>
    private const int Tile = Sgemm.PanelWidth;

    /// <summary>
    /// C = A B [m, m] for a product known to be symmetric (A and B read through strides as in
    /// <see cref="Sgemm.Multiply(float*, long, long, float*, long, long, float*, int, int, int, float*, long, long*)"/>):
    /// only the tiles on and below the diagonal are computed, then mirrored (for m = 128, 10 of the 16 tiles).
    /// </summary>
    private static unsafe void SymmetricProduct(float* a, long aRow, long aCol, float* b, long bRow, long bCol, float* c, int m, int k)
    {
        // B packed once; each row of tiles takes the columns up to its diagonal (a prefix of the panels).
        using var packed = new Sgemm.PackedMatrix(b, bRow, bCol, k, m);
        for (int r = 0; r < m; r += Tile)
        {
            int rows = Math.Min(Tile, m - r);
            Sgemm.Multiply(a + r * aRow, aRow, aCol, packed.Prefix(r + rows), c + (long)r * m, rows, cRow: m);
        }
        for (int i = 0; i < m; i++)
            for (int j = (i / Tile + 1) * Tile; j < m; j++)
                c[(long)i * m + j] = c[(long)j * m + i];
    }

    /// <summary>
    /// n x n form: D = T T^T - S S^T; loss ||D||^2; gradient -4 D S into g. D is symmetric and is
    /// computed as one product [T | S] [T | -S]^T (<see cref="SymmetricProduct"/>; no subtraction pass).
    /// </summary>
    private static unsafe double PairBlock(float* t, float* s, float* g, int n, int d)
    {
        // Pooled: a group's blocks are often past the large-object threshold, and a batch has dozens.
        var diff = ArrayPool<float>.Shared.Rent(n * n);
        var left = ArrayPool<float>.Shared.Rent(n * 2 * d);
        var right = ArrayPool<float>.Shared.Rent(n * 2 * d);
        try
        {
            fixed (float* dp = diff, lp = left, rp = right)
            {
                for (int i = 0; i < n; i++)
                {
                    var ti = new ReadOnlySpan<float>(t + (long)i * d, d);
                    var si = new ReadOnlySpan<float>(s + (long)i * d, d);
                    ti.CopyTo(new Span<float>(lp + (long)i * 2 * d, d));
                    si.CopyTo(new Span<float>(lp + (long)i * 2 * d + d, d));
                    ti.CopyTo(new Span<float>(rp + (long)i * 2 * d, d));
                    TensorPrimitives.Negate(si, new Span<float>(rp + (long)i * 2 * d + d, d));
                }
                // B(k, j) = right[j, k]: the transposed operand read in place.
                SymmetricProduct(lp, 2 * d, 1, rp, 1, 2 * d, dp, n, 2 * d);
                double loss = TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(dp, n * n));
                Sgemm.Multiply(dp, n, 1, s, d, 1, g, n, n, d);
                var grad = new Span<float>(g, n * d);
                TensorPrimitives.Multiply(grad, -4f, grad);
                return loss;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(diff);
            ArrayPool<float>.Shared.Return(left);
            ArrayPool<float>.Shared.Return(right);
        }
    }

    /// <summary>
    /// d x d form for large groups: loss ||T^T T||^2 - 2 ||T^T S||^2 + ||S^T S||^2; gradient
    /// 4 (S S^T S - T T^T S); the symmetric products by halves (<see cref="SymmetricProduct"/>).
    /// </summary>
    private static unsafe double GramBlock(float* t, float* s, float* g, int n, int d)
    {
        var tt = ArrayPool<float>.Shared.Rent(d * d);
        var ts = ArrayPool<float>.Shared.Rent(d * d);
        var ss = ArrayPool<float>.Shared.Rent(d * d);
        var part = ArrayPool<float>.Shared.Rent(n * d);
        try
        {
            fixed (float* ttp = tt, tsp = ts, ssp = ss, pp = part)
            {
                // A(i, k) = X[k, i]: X^T read in place; T^T T and S^T S are symmetric.
                SymmetricProduct(t, 1, d, t, d, 1, ttp, d, n);
                Sgemm.Multiply(t, 1, d, s, d, 1, tsp, d, n, d);
                SymmetricProduct(s, 1, d, s, d, 1, ssp, d, n);
                double loss = SquaredSum(ttp, d * d) - 2 * SquaredSum(tsp, d * d) + SquaredSum(ssp, d * d);
                Sgemm.Multiply(s, d, 1, ssp, d, 1, g, n, d, d);
                Sgemm.Multiply(t, d, 1, tsp, d, 1, pp, n, d, d);
                var grad = new Span<float>(g, n * d);
                TensorPrimitives.Subtract(grad, new ReadOnlySpan<float>(pp, n * d), grad);
                TensorPrimitives.Multiply(grad, 4f, grad);
                return loss;
            }
        }
        finally
        {
            foreach (var buffer in new[] { tt, ts, ss, part }) ArrayPool<float>.Shared.Return(buffer);
        }
    }

    private static unsafe double SquaredSum(float* x, int count) => TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(x, count));
}
