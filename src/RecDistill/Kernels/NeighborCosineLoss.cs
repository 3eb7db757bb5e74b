using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

using RecDistill.Distillation;

namespace RecDistill.Kernels;

/// <summary>
/// NKD's teacher side and loss as one autograd function on the CPU: for each row i, the teacher vector
/// of its entity mixed with that of its neighbour (noise drawn in place, the values
/// <see cref="CounterRandom.Uniform"/> would give for the same seed), and w_i (1 - cos(mixed_i, p_i)),
/// summed; the gradient for the projected rows p is computed in the same pass. Through libtorch this
/// was a dozen calls on [rows, d_T] tensors forward and as many backward (gathers, concatenations,
/// the noise, the mixing, the cosine and its backward), about a fifth of an NKD batch.
/// The cosine is libtorch's: each vector divided by its norm clamped at 1e-8. Row losses are added in
/// row order, so the result does not depend on the thread count.
/// </summary>
internal sealed class NeighborCosineLoss : torch.autograd.SingleTensorFunction<NeighborCosineLoss>
{
    private const double Eps = 1e-8;
    private const int RowsPerChunk = 256;

    public override string Name => nameof(NeighborCosineLoss);

    /// <summary>Whether the kernel runs for these inputs (float32 on the CPU); otherwise use libtorch.</summary>
    public static bool Supports(Tensor projected, Tensor teacherTable) => TensorOps.Float32OnCpu(projected, teacherTable);

    /// <summary>
    /// projected [n, d]; rows 0..users-1 are users (teacher vectors from userTable, weight 1), the rest
    /// items (itemTable, weight itemWeight); own [n] and neighbour [n] are the rows' ids in their table.
    /// Soft mixing: r t + (1 - r) t_n with r ~ U(0, 2 alpha) per element; hard: t where U(0, 1) &lt; alpha,
    /// else t_n. Draws one seed from <see cref="CounterRandom"/>, as the libtorch path's noise does.
    /// </summary>
    public static Tensor Compute(Tensor projected, Tensor userTable, Tensor itemTable, Tensor own, Tensor neighbour,
        long users, NeighborMixing mixing, double alpha, double itemWeight)
    {
        if (!Supports(projected, userTable) || !Supports(projected, itemTable))
            throw new ArgumentException("NeighborCosineLoss runs on float32 CPU tensors; use libtorch otherwise");
        long n = projected.shape[0], d = projected.shape[1];
        if (projected.dim() != 2 || userTable.shape[1] != d || itemTable.shape[1] != d || own.numel() != n || neighbour.numel() != n
            || users < 0 || users > n)
            throw new ArgumentException($"NeighborCosineLoss: projected [{string.Join(", ", projected.shape)}], tables of width {userTable.shape[1]} and {itemTable.shape[1]}, {own.numel()} ids and {neighbour.numel()} neighbours, {users} users do not fit");
        ulong seed = CounterRandom.NextSeed();
        var config = torch.tensor(new[] { users, (long)mixing, (long)seed });
        var factors = torch.tensor(new[] { alpha, itemWeight }, dtype: ScalarType.Float64);
        return apply(projected, userTable, itemTable, own.to(ScalarType.Int64), neighbour.to(ScalarType.Int64), config, factors);
    }

    public override unsafe Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var p = ((Tensor)vars[0]).detach().contiguous();
        var userTable = ((Tensor)vars[1]).detach().contiguous();
        var itemTable = ((Tensor)vars[2]).detach().contiguous();
        var own = TensorCopy.ToArray<long>((Tensor)vars[3]);
        var neighbour = TensorCopy.ToArray<long>((Tensor)vars[4]);
        var config = TensorCopy.ToArray<long>((Tensor)vars[5]);
        var factors = TensorCopy.ToArray<double>((Tensor)vars[6]);
        long users = config[0];
        bool hard = (NeighborMixing)config[1] == NeighborMixing.Hard;
        ulong seed = (ulong)config[2];
        double alpha = factors[0], itemWeight = factors[1];
        int n = (int)p.shape[0], d = (int)p.shape[1];
        long userRows = userTable.shape[0], itemRows = itemTable.shape[0];
        for (int i = 0; i < n; i++)
        {
            long rows = i < users ? userRows : itemRows;
            if (own[i] < 0 || own[i] >= rows || neighbour[i] < 0 || neighbour[i] >= rows)
                throw new ArgumentOutOfRangeException(nameof(vars), $"row {i}: id {own[i]} or neighbour {neighbour[i]} outside a table of {rows}");
        }
        // Soft: r in [0, 2 alpha); hard: a draw in [0, 1) below alpha keeps the entity's own coordinate.
        float step = CounterRandom.UniformStep(hard ? 1.0 : 2 * alpha);
        float keepBelow = (float)alpha;
        var grad = torch.empty(n, d, dtype: ScalarType.Float32);
        var rowLoss = new double[n];
        fixed (byte* pb = p.bytes, ub = userTable.bytes, ib = itemTable.bytes, gb = grad.bytes)
        {
            nint P = (nint)pb, U = (nint)ub, I = (nint)ib, G = (nint)gb;
            RowChunks.Run(n, RowsPerChunk, (from, to) =>
            {
                var mixed = new float[d];
                var r = new float[d];
                var part = new float[d];
                fixed (float* mixedPtr = mixed)
                {
                    for (int i = from; i < to; i++)
                    {
                        float* table = (float*)(i < users ? U : I);
                        float* t = table + own[i] * d, tn = table + neighbour[i] * d, pRow = (float*)P + (long)i * d;
                        if (i + 1 < to)
                        {
                            // The next row's two teacher vectors lie anywhere in a table larger than the caches.
                            float* next = (float*)(i + 1 < users ? U : I);
                            CacheLines.PrefetchRow(next + own[i + 1] * d, d);
                            CacheLines.PrefetchRow(next + neighbour[i + 1] * d, d);
                        }
                        double dot, mixedSquares, pSquares;
                        if (!hard && Vector512.IsHardwareAccelerated)
                            (dot, mixedSquares, pSquares) = MixSoft(t, tn, pRow, mixedPtr, d, seed, (long)i * d, step);
                        else
                        {
                            var mixedSpan = mixed.AsSpan();
                            var tSpan = new ReadOnlySpan<float>(t, d);
                            var tnSpan = new ReadOnlySpan<float>(tn, d);
                            CounterRandom.UniformInto(r, seed, (long)i * d, step);
                            if (hard)
                                for (int j = 0; j < d; j++) mixedSpan[j] = r[j] < keepBelow ? tSpan[j] : tnSpan[j];
                            else
                            {
                                // r t + (1 - r) t_n, rounded as the libtorch path's separate operations.
                                TensorPrimitives.Multiply(r, tSpan, mixedSpan);
                                TensorPrimitives.Subtract(1f, r, part);
                                TensorPrimitives.Multiply(part, tnSpan, part);
                                TensorPrimitives.Add(mixedSpan, part, mixedSpan);
                            }
                            var pSpan = new ReadOnlySpan<float>(pRow, d);
                            dot = TensorPrimitives.Dot<float>(mixedSpan, pSpan);
                            mixedSquares = TensorPrimitives.SumOfSquares<float>(mixedSpan);
                            pSquares = TensorPrimitives.SumOfSquares(pSpan);
                        }
                        double mixedNorm = Math.Max(Math.Sqrt(mixedSquares), Eps);
                        double pNorm = Math.Max(Math.Sqrt(pSquares), Eps);
                        double cos = dot / (mixedNorm * pNorm);
                        double w = i < users ? 1.0 : itemWeight;
                        rowLoss[i] = w * (1 - cos);
                        // d/dp of -w cos = -w (mixed / (|mixed| |p|) - cos p / |p|^2).
                        var g = new Span<float>((float*)G + (long)i * d, d);
                        TensorPrimitives.Multiply(mixed, (float)(-w / (mixedNorm * pNorm)), g);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(pRow, d), (float)(w * cos / (pNorm * pNorm)), g, g);
                    }
                }
            });
        }
        double total = 0;
        foreach (var l in rowLoss) total += l;
        ctx.save_for_backward(new List<Tensor> { grad });
        return torch.tensor((float)total);
    }

    /// <summary>
    /// Soft mixing of one row, 16 lanes at a time: mixed = r t + (1 - r) t_n (r drawn in place, the values
    /// of <see cref="CounterRandom.Uniform"/>, each product and sum rounded as the libtorch path's), stored
    /// in mixed; returns mixed . p, |mixed|^2 and |p|^2.
    /// </summary>
    private static unsafe (double Dot, double MixedSquares, double PSquares) MixSoft(float* t, float* tn, float* p, float* mixed,
        int d, ulong seed, long first, float step)
    {
        var dot = Vector512<float>.Zero; var mm = Vector512<float>.Zero; var pp = Vector512<float>.Zero;
        var one = Vector512.Create(1f);
        int j = 0;
        for (; j <= d - 16; j += 16)
        {
            var r = CounterRandom.Uniform16(seed, first + j, step);
            var m = r * Vector512.Load(t + j) + (one - r) * Vector512.Load(tn + j);
            m.Store(mixed + j);
            var pv = Vector512.Load(p + j);
            dot += m * pv; mm += m * m; pp += pv * pv;
        }
        double dotSum = Vector512.Sum(dot), mmSum = Vector512.Sum(mm), ppSum = Vector512.Sum(pp);
        for (; j < d; j++)
        {
            float r = CounterRandom.UniformDraw(seed, first + j, step);
            float m = r * t[j] + (1 - r) * tn[j];
            mixed[j] = m;
            dotSum += (double)m * p[j]; mmSum += (double)m * m; ppSum += (double)p[j] * p[j];
        }
        return (dotSum, mmSum, ppSum);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var grad = ctx.get_saved_variables()[0];
        return new List<Tensor> { grad * gradOutput.to(ScalarType.Float32), null!, null!, null!, null!, null!, null! };
    }
}
