using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// LightGCN's products with A_hat (<see cref="GraphAdjacency"/>) in C# over its CSR arrays: one
/// product with autograd, and the fused propagation mean(E_0, A E_0, ..., A^L E_0). libtorch's COO
/// product (the plain form) sorts the uncoalesced indices again on every call (TorchSharp offers no
/// coalesce), which made the three products of a LightGCN step cost more than everything else in
/// it. A_hat is symmetric, so the backward product is the same kernel. Each output row is summed by
/// one thread in CSR order: the same numbers for any thread count.
/// </summary>
internal sealed class GraphPropagation(GraphAdjacency adjacency)
{
    private readonly int[] _rowStart = adjacency.RowStart;
    private readonly int[] _columns = adjacency.Columns;
    private readonly float[] _values = adjacency.Values;

    public GraphAdjacency Adjacency { get; } = adjacency;
    public int Size => _rowStart.Length - 1;

    /// <summary>A_hat x with autograd (gradient A_hat g). x: float32 [n, d] on the CPU.</summary>
    internal Tensor Multiply(Tensor x) =>
        x.requires_grad ? AdjacencyProduct.apply(x, this) : MultiplyNoGrad(x);

    /// <summary>The product without recording it for autograd.</summary>
    internal Tensor MultiplyNoGrad(Tensor x)
    {
        if (x.device_type != DeviceType.CPU) throw new ArgumentException("the CSR product runs on the CPU");
        if (x.dim() != 2 || x.shape[0] != Size) throw new ArgumentException($"expected [{Size}, d], got [{string.Join(", ", x.shape)}]");
        using var _ = torch.no_grad();
        var input = x.dtype == ScalarType.Float32 ? x.contiguous() : x.to_type(ScalarType.Float32).contiguous();
        int d = (int)input.shape[1];
        var output = torch.empty(Size, d, dtype: ScalarType.Float32);
        if (d == 0 || Size == 0) return output;
        unsafe
        {
            fixed (byte* src = input.bytes, dst = output.bytes)
            {
                nint xp = (nint)src, yp = (nint)dst;
                RowChunks.Run(Size, 512, (from, to) => Rows((float*)xp, (float*)yp, d, from, to));
            }
        }
        if (!ReferenceEquals(input, x)) input.Dispose();
        return output;
    }

    private unsafe void Rows(float* x, float* y, int d, int from, int to)
    {
        int width = Vector<float>.Count;
        for (int r = from; r < to; r++)
        {
            float* dst = y + (long)r * d;
            new Span<float>(dst, d).Clear();
            for (int k = _rowStart[r]; k < _rowStart[r + 1]; k++)
            {
                float w = _values[k];
                float* src = x + (long)_columns[k] * d;
                int j = 0;
                for (; j <= d - width; j += width)
                {
                    var acc = Unsafe.ReadUnaligned<Vector<float>>(dst + j) + Unsafe.ReadUnaligned<Vector<float>>(src + j) * w;
                    Unsafe.WriteUnaligned(dst + j, acc);
                }
                for (; j < d; j++) dst[j] += src[j] * w;
            }
        }
    }

    /// <summary>Whether <see cref="Propagate"/>'s kernel runs in hardware here (AVX-512); use <see cref="Multiply"/> per layer otherwise.</summary>
    internal static bool PropagatesFused => Vector512.IsHardwareAccelerated;

    /// <summary>
    /// LightGCN's final vectors mean(E_0, A E_0, ..., A^L E_0) with E_0 = [users; items], with autograd.
    /// The map P = mean(I, A, ..., A^L) is linear and symmetric (A is), so its backward pass is P
    /// applied to the gradient: no layer output is kept for it. One pass per layer computes the
    /// layer's rows in registers, stores them for the next layer and adds them to the running sum;
    /// the per-layer product, sum, concatenation and their backward copies each went over the whole
    /// [n, d] table (at d = 200, 24 MB) and cost a LightGCN teacher batch more than its products did.
    /// </summary>
    internal (Tensor Users, Tensor Items) Propagate(Tensor users, Tensor items, int layers)
    {
        if (layers < 0) throw new ArgumentOutOfRangeException(nameof(layers), "layers must be 0 or more");
        if (users.dim() != 2 || items.dim() != 2 || users.shape[1] != items.shape[1] || users.shape[0] + items.shape[0] != Size)
            throw new ArgumentException($"expected [users, d] and [items, d] with {Size} rows in all, got [{string.Join(", ", users.shape)}] and [{string.Join(", ", items.shape)}]");
        if (users.requires_grad || items.requires_grad)
        {
            var both = PropagationFunction.apply(users, items, this, layers);
            return (both[0], both[1]);
        }
        return Split(PowerMean(users, items, layers), users.shape[0]);
    }

    /// <summary>Rows 0..users-1 and the rest (views).</summary>
    private static (Tensor Users, Tensor Items) Split(Tensor all, long users) =>
        (all.narrow(0, 0, users), all.narrow(0, users, all.shape[0] - users));

    /// <summary>mean(x, A x, ..., A^L x) with x = [top; bottom] (float32, CPU), without autograd.</summary>
    private Tensor PowerMean(Tensor top, Tensor bottom, int layers)
    {
        if (top.device_type != DeviceType.CPU || bottom.device_type != DeviceType.CPU) throw new ArgumentException("the CSR product runs on the CPU");
        using var _ = torch.no_grad();
        var a = top.to_type(ScalarType.Float32).contiguous();
        var b = bottom.to_type(ScalarType.Float32).contiguous();
        int d = (int)a.shape[1], split = (int)a.shape[0];
        var sum = torch.empty(Size, d, dtype: ScalarType.Float32);
        if (d == 0 || Size == 0) return sum;
        float scale = 1f / (layers + 1);
        var current = layers > 1 ? torch.empty(Size, d, dtype: ScalarType.Float32) : null;
        var next = layers > 2 ? torch.empty(Size, d, dtype: ScalarType.Float32) : null;
        unsafe
        {
            fixed (byte* ap = a.bytes, bp = b.bytes, sp = sum.bytes, cp = current is null ? Span<byte>.Empty : current.bytes,
                   np = next is null ? Span<byte>.Empty : next.bytes)
            {
                nint A = (nint)ap, B = (nint)bp, S = (nint)sp, C = (nint)cp, N = (nint)np;
                if (layers == 0)
                    RowChunks.Run(Size, 512, (from, to) => Scaled((float*)A, (float*)B, split, (float*)S, d, from, to, scale));
                for (int l = 1; l <= layers; l++)
                {
                    // Layer l reads layer l - 1 (E_0 as its two parts at l = 1) and writes layer l where a
                    // later layer reads it; the sum starts from E_0 at l = 1.
                    nint src = l == 1 ? 0 : (l % 2 == 0 ? C : N), dst = l == layers ? 0 : (l % 2 == 1 ? C : N);
                    bool first = l == 1, last = l == layers;
                    RowChunks.Run(Size, 512, (from, to) =>
                        Layer(first ? (float*)A : (float*)src, first ? (float*)B : (float*)src, first ? split : Size,
                              (float*)dst, (float*)S, d, from, to, first, last ? scale : 1f));
                }
            }
        }
        current?.Dispose(); next?.Dispose();
        if (!ReferenceEquals(a, top)) a.Dispose();
        if (!ReferenceEquals(b, bottom)) b.Dispose();
        return sum;
    }

    /// <summary>Row c of the table [top; bottom] (top has split rows, both are d wide).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float* RowOf(float* top, float* bottom, int split, int d, int c) =>
        c < split ? top + (long)c * d : bottom + (long)(c - split) * d;

    private static unsafe void Scaled(float* top, float* bottom, int split, float* sum, int d, int from, int to, float scale)
    {
        for (int r = from; r < to; r++)
        {
            float* x = RowOf(top, bottom, split, d, r);
            for (int j = 0; j < d; j++) sum[(long)r * d + j] = x[j] * scale;
        }
    }

    /// <summary>
    /// Rows from..to of one layer: row r of A X (X's row c at top + c d for c &lt; split, else at
    /// bottom + (c - split) d), stored in layer (when not null) and added to sum: sum = X_r + (A X)_r
    /// on the first layer, sum + (A X)_r after, times scale on the last. Each output row is summed by
    /// one thread in CSR order, up to 64 columns (four vectors) per pass over the row's neighbours in
    /// registers; a last partial vector is read and written through a mask, so a width that is not a
    /// multiple of 16 (a LightGCN student of d = 10, a teacher of d = 100) costs no extra pass.
    /// </summary>
    private unsafe void Layer(float* top, float* bottom, int split, float* layer, float* sum, int d, int from, int to, bool first, float scale)
    {
        const int W = 16, Block = 4 * W;
        var all = Vector512<float>.AllBitsSet;
        var tail = Sgemm.FirstLanes(d % W == 0 ? W : d % W);
        var times = Vector512.Create(scale);
        for (int r = from; r < to; r++)
        {
            int k0 = _rowStart[r], k1 = _rowStart[r + 1];
            float* own = RowOf(top, bottom, split, d, r);
            float* s = sum + (long)r * d;
            float* y = layer == null ? null : layer + (long)r * d;
            for (int j = 0; j < d; j += Block)
            {
                int vectors = (Math.Min(Block, d - j) + W - 1) / W;
                bool lastBlock = j + Block >= d;
                // Only the row's last vector may be partial.
                var last = lastBlock ? tail : all;
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                switch (vectors)
                {
                    case 4:
                        for (int k = k0; k < k1; k++)
                        {
                            float* x = RowOf(top, bottom, split, d, _columns[k]) + j;
                            var w = Vector512.Create(_values[k]);
                            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x), w, a0);
                            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + W), w, a1);
                            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * W), w, a2);
                            a3 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(x + 3 * W, last, default), w, a3);
                        }
                        break;
                    case 3:
                        for (int k = k0; k < k1; k++)
                        {
                            float* x = RowOf(top, bottom, split, d, _columns[k]) + j;
                            var w = Vector512.Create(_values[k]);
                            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x), w, a0);
                            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + W), w, a1);
                            a2 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(x + 2 * W, last, default), w, a2);
                        }
                        break;
                    case 2:
                        for (int k = k0; k < k1; k++)
                        {
                            float* x = RowOf(top, bottom, split, d, _columns[k]) + j;
                            var w = Vector512.Create(_values[k]);
                            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x), w, a0);
                            a1 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(x + W, last, default), w, a1);
                        }
                        break;
                    default:
                        for (int k = k0; k < k1; k++)
                        {
                            float* x = RowOf(top, bottom, split, d, _columns[k]) + j;
                            a0 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(x, last, default), Vector512.Create(_values[k]), a0);
                        }
                        break;
                }
                Finish(a0, j, vectors == 1 ? last : all);
                if (vectors > 1) Finish(a1, j + W, vectors == 2 ? last : all);
                if (vectors > 2) Finish(a2, j + 2 * W, vectors == 3 ? last : all);
                if (vectors > 3) Finish(a3, j + 3 * W, last);
            }

            void Finish(Vector512<float> acc, int at, Vector512<float> mask)
            {
                if (y != null) Avx512F.MaskStore(y + at, mask, acc);
                var before = Avx512F.MaskLoad(first ? own + at : s + at, mask, default);
                Avx512F.MaskStore(s + at, mask, (before + acc) * times);
            }
        }
    }

    private sealed class PropagationFunction : torch.autograd.MultiTensorFunction<PropagationFunction>
    {
        public override string Name => nameof(PropagationFunction);

        public static List<Tensor> apply(Tensor users, Tensor items, GraphPropagation adjacency, int layers) =>
            torch.autograd.MultiTensorFunction<PropagationFunction>.apply(users, items, adjacency, layers);

        // Users' and items' final vectors as two outputs (views of one buffer): no split in the
        // forward pass and no concatenation of their gradients in the backward pass.
        public override List<Tensor> forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var (users, items, adjacency, layers) = ((Tensor)vars[0], (Tensor)vars[1], (GraphPropagation)vars[2], (int)vars[3]);
            ctx.save_data("adjacency", adjacency);
            ctx.save_data("layers", layers);
            var (u, i) = Split(adjacency.PowerMean(users, items, layers), users.shape[0]);
            return new() { u, i };
        }

        // P is symmetric: the gradient of P x applied to g is P g, split back into users and items.
        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, List<Tensor> grads)
        {
            var adjacency = (GraphPropagation)ctx.get_data("adjacency");
            var (gu, gi) = (grads[0], grads[1]);
            var (u, i) = Split(adjacency.PowerMean(gu, gi, (int)ctx.get_data("layers")), gu.shape[0]);
            return new() { u, i, null!, null! };
        }
    }

    private sealed class AdjacencyProduct : torch.autograd.SingleTensorFunction<AdjacencyProduct>
    {
        public override string Name => nameof(AdjacencyProduct);

        public static Tensor apply(Tensor x, GraphPropagation adjacency) =>
            torch.autograd.SingleTensorFunction<AdjacencyProduct>.apply(x, adjacency);

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var adjacency = (GraphPropagation)vars[1];
            ctx.save_data("adjacency", adjacency);
            return adjacency.MultiplyNoGrad((Tensor)vars[0]);
        }

        // A_hat is symmetric: d(A_hat x)/dx applied to g is A_hat g.
        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad) =>
            new() { ((GraphPropagation)ctx.get_data("adjacency")).MultiplyNoGrad(grad), null! };
    }
}
