using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace RecDistill.Distillation;

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
public sealed class NeighborCosineLoss : torch.autograd.SingleTensorFunction<NeighborCosineLoss>
{
    private const double Eps = 1e-8;
    private const int RowsPerChunk = 256;

    public override string Name => nameof(NeighborCosineLoss);

    /// <summary>Whether the kernel runs for these inputs (float32 on the CPU); otherwise use libtorch.</summary>
    public static bool Supports(Tensor projected, Tensor teacherTable) =>
        projected.device_type == DeviceType.CPU && teacherTable.device_type == DeviceType.CPU
        && projected.dtype == ScalarType.Float32 && teacherTable.dtype == ScalarType.Float32;

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
                var r = new float[d];
                var mixed = new float[d];
                var part = new float[d];
                for (int i = from; i < to; i++)
                {
                    float* table = (float*)(i < users ? U : I);
                    var t = new ReadOnlySpan<float>(table + own[i] * d, d);
                    var tn = new ReadOnlySpan<float>(table + neighbour[i] * d, d);
                    var pRow = new ReadOnlySpan<float>((float*)P + (long)i * d, d);
                    CounterRandom.UniformInto(r, seed, (long)i * d, step);
                    if (hard)
                    {
                        for (int j = 0; j < d; j++) mixed[j] = r[j] < keepBelow ? t[j] : tn[j];
                    }
                    else
                    {
                        // r t + (1 - r) t_n, rounded as the libtorch path's separate operations.
                        TensorPrimitives.Multiply(r, t, mixed);
                        TensorPrimitives.Subtract(1f, r, part);
                        TensorPrimitives.Multiply(part, tn, part);
                        TensorPrimitives.Add(mixed, part, mixed);
                    }
                    double mixedNorm = Math.Max(Math.Sqrt(TensorPrimitives.SumOfSquares<float>(mixed)), Eps);
                    double pNorm = Math.Max(Math.Sqrt(TensorPrimitives.SumOfSquares(pRow)), Eps);
                    double cos = TensorPrimitives.Dot<float>(mixed, pRow) / (mixedNorm * pNorm);
                    double w = i < users ? 1.0 : itemWeight;
                    rowLoss[i] = w * (1 - cos);
                    // d/dp of -w cos = -w (mixed / (|mixed| |p|) - cos p / |p|^2).
                    var g = new Span<float>((float*)G + (long)i * d, d);
                    TensorPrimitives.Multiply(mixed, (float)(-w / (mixedNorm * pNorm)), g);
                    TensorPrimitives.MultiplyAdd(pRow, (float)(w * cos / (pNorm * pNorm)), g, g);
                }
            });
        }
        double total = 0;
        foreach (var l in rowLoss) total += l;
        ctx.save_for_backward(new List<Tensor> { grad });
        return torch.tensor((float)total);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var grad = ctx.get_saved_variables()[0];
        return new List<Tensor> { grad * gradOutput.to(ScalarType.Float32), null!, null!, null!, null!, null!, null! };
    }
}
