using System.Buffers;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// HTD's entity level as one autograd function on the CPU: the sum over groups of
/// ||T_g T_g^T - S_g S_g^T||^2 (T_g, S_g: a group's teacher and projected student rows), with its
/// gradient for the student rows computed in the same pass (-4 D_g S_g, D_g the difference block).
/// Through libtorch each group cost about fifteen calls forward and backward, and its products took
/// MKL's generic path; with 30 groups of users and 30 of items per batch that was most of an HTD epoch.
/// Groups past 2d members use the d x d form (see <see cref="HierarchicalTopologyDistillation.GroupBlockLoss"/>):
/// loss ||T^T T||^2 - 2 ||T^T S||^2 + ||S^T S||^2, gradient 4 (S (S^T S) - T (T^T S)).
/// Each group is computed by one thread and the groups' losses are added in group order, so the result
/// does not depend on the thread count.
/// </summary>
public sealed class GroupSimilarityLoss : torch.autograd.SingleTensorFunction<GroupSimilarityLoss>
{
    public override string Name => nameof(GroupSimilarityLoss);

    /// <summary>Whether the kernel runs for these inputs (CPU, float32, AVX-512); otherwise use libtorch.</summary>
    public static bool Supports(Tensor teacher, Tensor student) =>
        Sgemm.IsSupported && teacher.device_type == DeviceType.CPU && student.device_type == DeviceType.CPU
        && teacher.dtype == ScalarType.Float32 && student.dtype == ScalarType.Float32;

    /// <summary>
    /// teacher [n, d] (no gradient), student [n, d]; order [n] lists the rows group by group and
    /// sizes[g] is group g's size (as <see cref="TensorOps.GroupByLabel"/> returns them). A scalar.
    /// </summary>
    public static Tensor Compute(Tensor teacher, Tensor student, Tensor order, long[] sizes)
    {
        if (!Supports(teacher, student)) throw new ArgumentException("GroupSimilarityLoss runs on float32 CPU tensors with AVX-512; use libtorch otherwise");
        if (teacher.dim() != 2 || student.dim() != 2 || teacher.shape[0] != student.shape[0] || teacher.shape[1] != student.shape[1])
            throw new ArgumentException($"GroupSimilarityLoss: teacher [{string.Join(", ", teacher.shape)}] and student [{string.Join(", ", student.shape)}] do not fit");
        if (order.numel() != student.shape[0] || sizes.Sum() != student.shape[0])
            throw new ArgumentException("GroupSimilarityLoss: the groups must cover every row once");
        return apply(teacher, student, order.to(ScalarType.Int64), torch.tensor(sizes));
    }

    public override unsafe Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var order = (Tensor)vars[2];
        // Rows in group order, so that each group is one contiguous block.
        var t = ((Tensor)vars[0]).detach().index_select(0, order).contiguous();
        var s = ((Tensor)vars[1]).detach().index_select(0, order).contiguous();
        var sizes = TensorCopy.ToArray<long>((Tensor)vars[3]);
        int d = (int)s.shape[1];
        var offsets = new long[sizes.Length + 1];
        for (int g = 0; g < sizes.Length; g++) offsets[g + 1] = offsets[g] + sizes[g];
        var grad = torch.zeros_like(s);
        var losses = new double[sizes.Length];
        fixed (byte* tb = t.bytes, sb = s.bytes, gb = grad.bytes)
        {
            nint T = (nint)tb, S = (nint)sb, G = (nint)gb;
            RowChunks.Run(sizes.Length, 1, (from, to) =>
            {
                for (int g = from; g < to; g++)
                {
                    int n = (int)sizes[g];
                    // A lone entity's only pair is itself: both similarities are 1, the error is 0.
                    if (n < 2) continue;
                    long at = offsets[g] * d;
                    losses[g] = HierarchicalTopologyDistillation.UsesGramForm(n, d)
                        ? GramBlock((float*)T + at, (float*)S + at, (float*)G + at, n, d)
                        : PairBlock((float*)T + at, (float*)S + at, (float*)G + at, n, d);
                }
            });
        }
        double total = 0;
        foreach (var l in losses) total += l;
        ctx.save_for_backward(new List<Tensor> { grad, order });
        return torch.tensor((float)total);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (grad, order) = (saved[0], saved[1]);
        // Back from group order to the input's row order (each row appears once in order).
        var gs = torch.zeros_like(grad).index_copy_(0, order, grad * gradOutput.to(ScalarType.Float32));
        return new List<Tensor> { null!, gs, null!, null! };
    }

    /// <summary>n x n form: D = T T^T - S S^T; loss ||D||^2; gradient -4 D S into g.</summary>
    private static unsafe double PairBlock(float* t, float* s, float* g, int n, int d)
    {
        // Pooled: a group's blocks are often past the large-object threshold, and a batch has dozens.
        var a = ArrayPool<float>.Shared.Rent(n * n);
        var b = ArrayPool<float>.Shared.Rent(n * n);
        try
        {
            fixed (float* ap = a, bp = b)
            {
                // B(k, j) = X[j, k]: the transposed operand is read in place.
                Sgemm.Multiply(t, d, 1, t, 1, d, ap, n, d, n);
                Sgemm.Multiply(s, d, 1, s, 1, d, bp, n, d, n);
                var diff = new Span<float>(ap, n * n);
                TensorPrimitives.Subtract(diff, new ReadOnlySpan<float>(bp, n * n), diff);
                double loss = TensorPrimitives.SumOfSquares<float>(diff);
                Sgemm.Multiply(ap, n, 1, s, d, 1, g, n, n, d);
                var grad = new Span<float>(g, n * d);
                TensorPrimitives.Multiply(grad, -4f, grad);
                return loss;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(a);
            ArrayPool<float>.Shared.Return(b);
        }
    }

    /// <summary>d x d form for large groups: loss ||T^T T||^2 - 2 ||T^T S||^2 + ||S^T S||^2; gradient 4 (S S^T S - T T^T S).</summary>
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
                // A(i, k) = X[k, i]: X^T read in place.
                Sgemm.Multiply(t, 1, d, t, d, 1, ttp, d, n, d);
                Sgemm.Multiply(t, 1, d, s, d, 1, tsp, d, n, d);
                Sgemm.Multiply(s, 1, d, s, d, 1, ssp, d, n, d);
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
