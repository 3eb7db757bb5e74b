using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// The projectors' experts (dropout -> linear -> ReLU -> dropout -> linear, weights stacked per layer)
/// as one autograd function on the CPU, forward and backward in C# over <see cref="Sgemm"/>.
/// Through libtorch each expert costs a dozen small calls per pass (gather, two products, ReLU,
/// dropout masks, and their backward nodes): with CPD's 30 experts of a few hundred rows each, the
/// projector ran at a fifth of the products' speed. Here every product is one kernel call on slices
/// of a few buffers, and with more than one thread the experts of the selection form run in
/// parallel (each expert's outputs and gradients are written by one thread, so results do not depend
/// on the thread count). The dropout masks are <see cref="CounterRandom"/>'s, with seeds drawn in the
/// order the libtorch path draws them.
/// </summary>
internal sealed class ExpertMlp : torch.autograd.SingleTensorFunction<ExpertMlp>
{
    public override string Name => nameof(ExpertMlp);

    /// <summary>Whether the kernel runs for these inputs (CPU, float32, AVX-512); otherwise use libtorch.</summary>
    public static bool Supports(Tensor x, Tensor w1) =>
        Sgemm.IsSupported && x.device_type == DeviceType.CPU && x.dtype == ScalarType.Float32 && w1.dtype == ScalarType.Float32;

    /// <summary>
    /// x [n, d_S]; w1 [E, d_S, H], b1 [E, 1, H], w2 [E, H, d_T], b2 [E, 1, d_T]. Without a selection, the
    /// sum of all E experts' outputs for every row (the mean form, before its normalisation); with
    /// selection [n] (expert of each row), each row's output of its expert. Dropout probability p
    /// applies to each expert's input and hidden layer (0: none).
    /// </summary>
    public static Tensor Compute(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? selection, double dropout)
    {
        if (!Supports(x, w1)) throw new ArgumentException("ExpertMlp runs on float32 CPU tensors with AVX-512; use libtorch otherwise");
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), "dropout must lie in [0, 1)");
        long experts = w1.shape[0], n = x.shape[0];
        if (x.dim() != 2 || w1.dim() != 3 || w2.dim() != 3 || x.shape[1] != w1.shape[1] || w2.shape[0] != experts
            || w2.shape[1] != w1.shape[2] || b1.numel() != experts * w1.shape[2] || b2.numel() != experts * w2.shape[2])
            throw new ArgumentException($"ExpertMlp: x [{string.Join(", ", x.shape)}], w1 [{string.Join(", ", w1.shape)}], w2 [{string.Join(", ", w2.shape)}] do not fit");

        // Rows grouped by expert (each group in row order): order[offsets[e] .. offsets[e + 1]) are expert e's rows.
        var offsets = new long[experts + 1];
        var order = new long[selection is null ? 0 : n];
        if (selection is not null)
        {
            if (selection.numel() != n) throw new ArgumentException("one selected expert per row");
            var labels = TensorCopy.ToArray<long>(selection.to(ScalarType.Int64));
            foreach (var e in labels)
            {
                if (e < 0 || e >= experts) throw new ArgumentOutOfRangeException(nameof(selection), $"expert {e} of {experts}");
                offsets[e + 1]++;
            }
            for (int e = 0; e < experts; e++) offsets[e + 1] += offsets[e];
            var next = offsets[..^1];
            for (int r = 0; r < labels.Length; r++) order[next[labels[r]]++] = r;
        }

        // Seeds in the libtorch path's order: mean form, each expert's input then the joint hidden
        // layer; selection form, input and hidden per expert that has rows.
        var seeds = new List<long>();
        if (dropout > 0)
        {
            if (selection is null)
                for (int e = 0; e <= experts; e++) seeds.Add((long)CounterRandom.NextSeed());
            else
                for (int e = 0; e < experts; e++)
                {
                    bool rows = offsets[e + 1] > offsets[e];
                    seeds.Add(rows ? (long)CounterRandom.NextSeed() : 0);
                    seeds.Add(rows ? (long)CounterRandom.NextSeed() : 0);
                }
        }
        return apply(x, w1, b1, w2, b2, torch.tensor(order), torch.tensor(offsets), torch.tensor(seeds.ToArray()),
            torch.tensor(new[] { dropout, selection is null ? 0.0 : 1.0 }, dtype: ScalarType.Float64));
    }

    public override unsafe Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = ((Tensor)vars[0]).detach().contiguous();
        var w1 = ((Tensor)vars[1]).detach().contiguous();
        var b1 = ((Tensor)vars[2]).detach().contiguous();
        var w2 = ((Tensor)vars[3]).detach().contiguous();
        var b2 = ((Tensor)vars[4]).detach().contiguous();
        var (order, offsets, seeds, config) = ((Tensor)vars[5], (Tensor)vars[6], (Tensor)vars[7], (Tensor)vars[8]);
        var s = new Shape((int)x.shape[0], w1, w2, config);
        Tensor y, input, hidden;
        if (s.Selected) (y, input, hidden) = ForwardSelected(s, x, w1, b1, w2, b2, order, offsets, seeds);
        else (y, input, hidden) = ForwardMean(s, x, w1, b1, w2, b2, seeds);
        ctx.save_for_backward(new List<Tensor> { input, hidden, w1, w2, order, offsets, seeds, config });
        ctx.save_data("x_grad", ((Tensor)vars[0]).requires_grad);
        return y;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (input, hidden, w1, w2, order, offsets, seeds, config) = (saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6], saved[7]);
        var g = gradOutput.to(ScalarType.Float32).contiguous();
        var s = new Shape((int)g.shape[0], w1, w2, config);
        bool xGrad = (bool)ctx.get_data("x_grad");
        var grads = s.Selected
            ? BackwardSelected(s, g, input, hidden, w1, w2, order, offsets, seeds, xGrad)
            : BackwardMean(s, g, input, hidden, w1, w2, seeds, xGrad);
        return new List<Tensor> { grads.X!, grads.W1, grads.B1, grads.W2, grads.B2, null!, null!, null!, null! };
    }

    private sealed record Shape
    {
        public Shape(int rows, Tensor w1, Tensor w2, Tensor config)
        {
            Rows = rows;
            StudentDim = (int)w1.shape[1];
            Experts = (int)w1.shape[0]; Hidden = (int)w1.shape[2]; TeacherDim = (int)w2.shape[2];
            var c = config.data<double>();
            Dropout = c[0]; Selected = c[1] != 0;
            Threshold = Dropout > 0 ? CounterRandom.KeepThreshold(Dropout) : 0;
            Scale = Dropout > 0 ? (float)(1 / (1 - Dropout)) : 1f;
        }
        public int Rows { get; }
        public int StudentDim { get; }
        public int Experts { get; }
        public int Hidden { get; }
        public int TeacherDim { get; }
        public double Dropout { get; }
        public bool Selected { get; }
        public uint Threshold { get; }
        public float Scale { get; }
    }

    /// <summary>Each row through its selected expert; inputs and hidden layers kept in group order for the backward.</summary>
    private static unsafe (Tensor Y, Tensor Input, Tensor Hidden) ForwardSelected(Shape s, Tensor x, Tensor w1, Tensor b1,
        Tensor w2, Tensor b2, Tensor order, Tensor offsets, Tensor seeds)
    {
        int n = s.Rows, dS = s.StudentDim, h = s.Hidden, dT = s.TeacherDim;
        var xg = torch.empty(n, dS, dtype: ScalarType.Float32);
        var hd = torch.empty(n, h, dtype: ScalarType.Float32);
        var y = torch.empty(n, dT, dtype: ScalarType.Float32);
        var ord = TensorCopy.ToArray<long>(order);
        fixed (byte* xp = x.bytes, w1p = w1.bytes, b1p = b1.bytes, w2p = w2.bytes, b2p = b2.bytes, xgp = xg.bytes, hdp = hd.bytes, yp = y.bytes)
        fixed (long* op = ord)
        {
            nint X = (nint)xp, W1 = (nint)w1p, B1 = (nint)b1p, W2 = (nint)w2p, B2 = (nint)b2p, XG = (nint)xgp, HD = (nint)hdp, Y = (nint)yp, O = (nint)op;
            var off = TensorCopy.ToArray<long>(offsets);
            var seed = TensorCopy.ToArray<long>(seeds);
            PerExpert(off, e =>
            {
                int start = (int)off[e], count = (int)(off[e + 1] - start);
                if (count == 0) return;
                float* xe = (float*)XG + (long)start * dS, he = (float*)HD + (long)start * h;
                for (int j = 0; j < count; j++)
                {
                    var src = new ReadOnlySpan<float>((float*)X + ord[start + j] * dS, dS);
                    var dst = new Span<float>(xe + (long)j * dS, dS);
                    src.CopyTo(dst);
                    if (s.Dropout > 0) DropRow(dst, (ulong)seed[2 * e], (long)j * dS, s);
                }
                Sgemm.Multiply(xe, dS, 1, (float*)W1 + (long)e * dS * h, h, 1, he, count, dS, h, (float*)B1 + (long)e * h);
                ReluDrop(he, count, h, h, s.Dropout > 0 ? (ulong)seed[2 * e + 1] : 0, s);
                // The expert's outputs go straight to their rows' places in y.
                Sgemm.Multiply(he, h, 1, (float*)W2 + (long)e * h * dT, dT, 1, (float*)Y, count, h, dT, (float*)B2 + (long)e * dT,
                    cRowIndex: (long*)O + start);
            });
        }
        return (y, xg, hd);
    }

    /// <summary>Every row through every expert: the hidden layers side by side [n, E*H], then one product with the stacked output weights.</summary>
    private static unsafe (Tensor Y, Tensor Input, Tensor Hidden) ForwardMean(Shape s, Tensor x, Tensor w1, Tensor b1,
        Tensor w2, Tensor b2, Tensor seeds)
    {
        int n = s.Rows, dS = s.StudentDim, h = s.Hidden, dT = s.TeacherDim, experts = s.Experts, wide = experts * h;
        // With dropout, each expert sees its own masked copy of the input: [E, n, d_S].
        var input = s.Dropout > 0 ? torch.empty(experts, n, dS, dtype: ScalarType.Float32) : x;
        var hidden = torch.empty(n, wide, dtype: ScalarType.Float32);
        var y = torch.empty(n, dT, dtype: ScalarType.Float32);
        using var b2Sum = b2.sum(new long[] { 0 }).contiguous(); // the experts' output biases add up
        var seed = TensorCopy.ToArray<long>(seeds);
        fixed (byte* xp = x.bytes, ip = input.bytes, w1p = w1.bytes, b1p = b1.bytes, w2p = w2.bytes, bsp = b2Sum.bytes, hp = hidden.bytes, yp = y.bytes)
        {
            for (int e = 0; e < experts; e++)
            {
                float* xe = (float*)ip;
                if (s.Dropout > 0)
                {
                    xe = (float*)ip + (long)e * n * dS;
                    new ReadOnlySpan<float>(xp, n * dS).CopyTo(new Span<float>(xe, n * dS));
                    DropRow(new Span<float>(xe, n * dS), (ulong)seed[e], 0, s);
                }
                Sgemm.Multiply(xe, dS, 1, (float*)w1p + (long)e * dS * h, h, 1, (float*)hp + (long)e * h, n, dS, h,
                    (float*)b1p + (long)e * h, cRow: wide);
            }
            ReluDrop((float*)hp, n, wide, wide, s.Dropout > 0 ? (ulong)seed[experts] : 0, s);
            Sgemm.Multiply((float*)hp, wide, 1, (float*)w2p, dT, 1, (float*)yp, n, wide, dT, (float*)bsp);
        }
        return (y, input, hidden);
    }

    private static unsafe (Tensor? X, Tensor W1, Tensor B1, Tensor W2, Tensor B2) BackwardSelected(Shape s, Tensor g, Tensor xg,
        Tensor hd, Tensor w1, Tensor w2, Tensor order, Tensor offsets, Tensor seeds, bool xGrad)
    {
        int n = s.Rows, dS = s.StudentDim, h = s.Hidden, dT = s.TeacherDim, experts = s.Experts;
        // Each expert's gradients are written whole by its products (zeroed for an expert without rows).
        var gw1 = torch.empty(experts, dS, h); var gb1 = torch.empty(experts, 1, h);
        var gw2 = torch.empty(experts, h, dT); var gb2 = torch.empty(experts, 1, dT);
        var gx = xGrad ? torch.empty(n, dS) : null;  // every row belongs to one expert
        using var gg = torch.empty(n, dT, dtype: ScalarType.Float32);  // g in group order
        using var dh = torch.empty(n, h, dtype: ScalarType.Float32);
        using var dxg = torch.empty(n, dS, dtype: ScalarType.Float32);
        var ord = TensorCopy.ToArray<long>(order);
        var off = TensorCopy.ToArray<long>(offsets);
        var seed = TensorCopy.ToArray<long>(seeds);
        // Without an input gradient gx is null and its pointer too (an empty span pins to null).
        fixed (byte* gp = g.bytes, xgp = xg.bytes, hdp = hd.bytes, w1p = w1.bytes, w2p = w2.bytes, ggp = gg.bytes, dhp = dh.bytes, dxp = dxg.bytes,
               gw1p = gw1.bytes, gb1p = gb1.bytes, gw2p = gw2.bytes, gb2p = gb2.bytes, gxp = gx is null ? Span<byte>.Empty : gx.bytes)
        {
            nint G = (nint)gp, XG = (nint)xgp, HD = (nint)hdp, W1 = (nint)w1p, W2 = (nint)w2p, GG = (nint)ggp, DH = (nint)dhp, DX = (nint)dxp,
                 GW1 = (nint)gw1p, GB1 = (nint)gb1p, GW2 = (nint)gw2p, GB2 = (nint)gb2p, GX = (nint)gxp;
            PerExpert(off, e =>
            {
                int start = (int)off[e], count = (int)(off[e + 1] - start);
                if (count == 0)
                {
                    new Span<float>((float*)GW1 + (long)e * dS * h, dS * h).Clear();
                    new Span<float>((float*)GB1 + (long)e * h, h).Clear();
                    new Span<float>((float*)GW2 + (long)e * h * dT, h * dT).Clear();
                    new Span<float>((float*)GB2 + (long)e * dT, dT).Clear();
                    return;
                }
                float* ge = (float*)GG + (long)start * dT, he = (float*)HD + (long)start * h, xe = (float*)XG + (long)start * dS;
                float* de = (float*)DH + (long)start * h;
                for (int j = 0; j < count; j++)
                    new ReadOnlySpan<float>((float*)G + ord[start + j] * dT, dT).CopyTo(new Span<float>(ge + (long)j * dT, dT));
                float* w1e = (float*)W1 + (long)e * dS * h, w2e = (float*)W2 + (long)e * h * dT;
                Sgemm.Multiply(he, 1, h, ge, dT, 1, (float*)GW2 + (long)e * h * dT, h, count, dT);   // dW2 = H^T G
                ColumnSums(ge, count, dT, dT, (float*)GB2 + (long)e * dT);
                Sgemm.Multiply(ge, dT, 1, w2e, 1, dT, de, count, dT, h);                              // dH = G W2^T
                ReluDropBackward(de, he, count, h, h, s.Scale);
                Sgemm.Multiply(xe, 1, dS, de, h, 1, (float*)GW1 + (long)e * dS * h, dS, count, h);   // dW1 = X^T dH
                ColumnSums(de, count, h, h, (float*)GB1 + (long)e * h);
                if (GX == 0) return;
                float* dxe = (float*)DX + (long)start * dS;
                Sgemm.Multiply(de, h, 1, w1e, 1, h, dxe, count, h, dS);                               // dX = dH W1^T
                for (int j = 0; j < count; j++)
                {
                    var row = new Span<float>(dxe + (long)j * dS, dS);
                    if (s.Dropout > 0) DropRow(row, (ulong)seed[2 * e], (long)j * dS, s);
                    row.CopyTo(new Span<float>((float*)GX + ord[start + j] * dS, dS));
                }
            });
        }
        return (gx, gw1, gb1, gw2, gb2);
    }

    private static unsafe (Tensor? X, Tensor W1, Tensor B1, Tensor W2, Tensor B2) BackwardMean(Shape s, Tensor g, Tensor input,
        Tensor hidden, Tensor w1, Tensor w2, Tensor seeds, bool xGrad)
    {
        int n = s.Rows, dS = s.StudentDim, h = s.Hidden, dT = s.TeacherDim, experts = s.Experts, wide = experts * h;
        var gw1 = torch.empty(experts, dS, h); var gb1 = torch.empty(experts, 1, h);
        var gw2 = torch.empty(experts, h, dT); var gb2 = torch.empty(experts, 1, dT);
        var gx = xGrad ? torch.zeros(n, dS) : null;
        using var dh = torch.empty(n, wide, dtype: ScalarType.Float32);
        using var dxe = torch.empty(n, dS, dtype: ScalarType.Float32);
        var seed = TensorCopy.ToArray<long>(seeds);
        fixed (byte* gp = g.bytes, ip = input.bytes, hp = hidden.bytes, w1p = w1.bytes, w2p = w2.bytes, dhp = dh.bytes, dxp = dxe.bytes,
               gw1p = gw1.bytes, gb1p = gb1.bytes, gw2p = gw2.bytes, gb2p = gb2.bytes, gxp = gx is null ? Span<byte>.Empty : gx.bytes)
        {
            Sgemm.Multiply((float*)hp, 1, wide, (float*)gp, dT, 1, (float*)gw2p, wide, n, dT);       // dW2 = H^T G
            ColumnSums((float*)gp, n, dT, dT, (float*)gb2p);
            for (int e = 1; e < experts; e++)
                new ReadOnlySpan<float>(gb2p, dT).CopyTo(new Span<float>((float*)gb2p + (long)e * dT, dT));
            Sgemm.Multiply((float*)gp, dT, 1, (float*)w2p, 1, dT, (float*)dhp, n, dT, wide);          // dH = G W2^T
            ReluDropBackward((float*)dhp, (float*)hp, n, wide, wide, s.Scale);
            for (int e = 0; e < experts; e++)
            {
                float* xe = (float*)ip + (s.Dropout > 0 ? (long)e * n * dS : 0), de = (float*)dhp + (long)e * h;
                float* w1e = (float*)w1p + (long)e * dS * h;
                Sgemm.Multiply(xe, 1, dS, de, wide, 1, (float*)gw1p + (long)e * dS * h, dS, n, h);    // dW1 = X^T dH
                ColumnSums(de, n, h, wide, (float*)gb1p + (long)e * h);
                if (gxp is null) continue;
                Sgemm.Multiply(de, wide, 1, w1e, 1, h, (float*)dxp, n, h, dS);                       // dX = dH W1^T
                var d = new Span<float>(dxp, n * dS);
                if (s.Dropout > 0) DropRow(d, (ulong)seed[e], 0, s);
                System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(gxp, n * dS), d, new Span<float>(gxp, n * dS));
            }
        }
        return (gx, gw1, gb1, gw2, gb2);
    }

    /// <summary>Zeroes the dropped elements of a span (mask elements first .. first + length) and scales the kept ones.</summary>
    private static void DropRow(Span<float> values, ulong seed, long first, Shape s) =>
        CounterRandom.DropInPlace(values, seed, first, s.Threshold, s.Scale);

    /// <summary>ReLU, then (with a seed) dropout with mask element r * cols + c, on rows that lie stride apart.</summary>
    private static unsafe void ReluDrop(float* values, int rows, int cols, long stride, ulong seed, Shape s)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = new Span<float>(values + r * stride, cols);
            System.Numerics.Tensors.TensorPrimitives.Max(row, 0f, row);
            if (s.Dropout > 0) DropRow(row, seed, (long)r * cols, s);
        }
    }

    /// <summary>
    /// Gradient through dropout and ReLU, given the layer's output: the kept, active units (output > 0)
    /// pass the gradient times the dropout scale; the others pass nothing.
    /// </summary>
    private static unsafe void ReluDropBackward(float* grad, float* output, int rows, int cols, long stride, float scale)
    {
        // Branch-free: whether a unit is active is a coin flip, which a branch would mispredict.
        var s = Vector512.Create(scale);
        for (int r = 0; r < rows; r++)
        {
            float* gr = grad + r * stride, o = output + r * stride;
            int c = 0;
            for (; c + 16 <= cols; c += 16)
            {
                var active = Vector512.GreaterThan(Vector512.Load(o + c), Vector512<float>.Zero);
                (Vector512.Load(gr + c) * s & active).Store(gr + c);
            }
            for (; c < cols; c++) gr[c] = o[c] > 0 ? gr[c] * scale : 0f;
        }
    }

    /// <summary>sums[c] = sum over rows r (in order) of values[r * stride + c].</summary>
    private static unsafe void ColumnSums(float* values, int rows, int cols, long stride, float* sums)
    {
        var acc = new Span<float>(sums, cols);
        acc.Clear();
        for (int r = 0; r < rows; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(acc, new ReadOnlySpan<float>(values + r * stride, cols), acc);
    }

    /// <summary>Runs body for every expert (offsets: expert e's rows are offsets[e] .. offsets[e + 1]), see <see cref="RowChunks.RunPieces"/>.</summary>
    private static void PerExpert(long[] offsets, Action<int> body) =>
        RowChunks.RunPieces(Enumerable.Range(0, offsets.Length - 1).Select(e => offsets[e + 1] - offsets[e]).ToArray(), body);
}
