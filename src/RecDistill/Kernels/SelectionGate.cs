using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// The Gumbel-softmax expert selection of the selection projectors (DE, CPD, HTD) in C# on the CPU:
/// each row's expert is the argmax of logits + g (g = -log(-log u), the noise; <see cref="Choose"/>),
/// and the experts' output is multiplied by the gate p_sel / stopgrad(p_sel) with
/// p = softmax((logits + g) / tau) (<see cref="Apply"/>, an autograd function): the gate's value is 1,
/// so the output keeps its values, and its gradient with respect to the logits is
/// d_gate * (onehot(sel) - p) / tau. Through libtorch the same took a dozen operations on
/// [rows, experts] each way (noise, softmax, argmax, gather, division and their backward nodes) and a
/// multiplication of the [rows, d_T] output with its backward; here one pass forward after the noise
/// draw, and one backward.
/// </summary>
internal sealed class SelectionGate : torch.autograd.SingleTensorFunction<SelectionGate>
{
    public override string Name => nameof(SelectionGate);

    /// <summary>Whether these logits take the C# path (CPU, float32); otherwise use libtorch's operations.</summary>
    public static bool Supports(Tensor logits) => TensorOps.Float32OnCpu(logits);

    /// <summary>
    /// logits [n, E] and uniform noise u [n, E] in (0, 1) -> z = logits + g (no gradient; kept for
    /// <see cref="Apply"/>) and each row's selected expert [n] (int64), the argmax of z.
    /// </summary>
    public static unsafe (Tensor Noisy, Tensor Selected) Choose(Tensor logits, Tensor uniform)
    {
        if (!Supports(logits) || uniform.dtype != ScalarType.Float32) throw new ArgumentException("SelectionGate runs on float32 CPU tensors");
        if (logits.dim() != 2 || !uniform.shape.SequenceEqual(logits.shape))
            throw new ArgumentException($"SelectionGate: logits [{string.Join(", ", logits.shape)}] and noise [{string.Join(", ", uniform.shape)}] must be the same [n, E]");
        int n = (int)logits.shape[0], experts = (int)logits.shape[1];
        var z = uniform.detach().to(ScalarType.Float32, copy: true).contiguous();
        var selected = new long[n];
        using (var l = logits.detach().contiguous())
        fixed (byte* zp = z.bytes, lp = l.bytes)
        {
            var values = new Span<float>(zp, n * experts);
            TensorPrimitives.Log(values, values);
            TensorPrimitives.Negate(values, values);
            TensorPrimitives.Log(values, values);
            TensorPrimitives.Subtract(new ReadOnlySpan<float>(lp, n * experts), values, values); // logits - log(-log u)
            for (int r = 0; r < n; r++) selected[r] = ArgMax(values.Slice(r * experts, experts));
        }
        return (z, torch.tensor(selected));
    }

    /// <summary>
    /// Index of the first largest value (of the first NaN, if any), as torch.argmax. Not
    /// TensorPrimitives.IndexOfMax: its vector path returns wrong indices on threads that flush
    /// denormals (<see cref="DenormalFlush"/>), as the trainer's threads do.
    /// </summary>
    internal static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsNaN(values[i])) return i;
            if (values[i] > values[best]) best = i;
        }
        return best;
    }

    /// <summary>
    /// The gated output: the experts' output [n, d] times the gate, whose value is 1, so the same values;
    /// the gradient passes to the output unchanged and reaches the logits as d_gate * (onehot(sel) - p) / tau
    /// with d_gate = sum_j d_out[r, j] out[r, j]. noisy and selected are <see cref="Choose"/>'s.
    /// </summary>
    public static Tensor Apply(Tensor output, Tensor logits, Tensor noisy, Tensor selected, double tau)
    {
        if (tau <= 0) throw new ArgumentOutOfRangeException(nameof(tau), "the temperature must be positive");
        if (output.dim() != 2 || output.shape[0] != logits.shape[0] || !noisy.shape.SequenceEqual(logits.shape) || selected.numel() != logits.shape[0])
            throw new ArgumentException($"SelectionGate: output [{string.Join(", ", output.shape)}], logits [{string.Join(", ", logits.shape)}] and {selected.numel()} selections do not fit");
        return apply(output, logits, noisy, selected, torch.tensor(tau, dtype: ScalarType.Float64));
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (output, z, sel, tau) = ((Tensor)vars[0], (Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4]);
        // The output's values as they are, without the copy a multiplication by the gate's ones made.
        var y = output.detach();
        ctx.save_for_backward(new List<Tensor> { y, z, sel, tau });
        return y.alias();
    }

    public override unsafe List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (y, z, sel, tauT) = (saved[0].contiguous(), saved[1], saved[2], saved[3]);
        int n = (int)z.shape[0], experts = (int)z.shape[1], d = (int)y.shape[1];
        float tau = (float)tauT.item<double>();
        var g = gradOutput.to(ScalarType.Float32).contiguous();
        var grad = torch.empty(n, experts, dtype: ScalarType.Float32);
        var selected = TensorCopy.ToArray<long>(sel);
        var gate = new float[n];
        fixed (byte* zp = z.bytes, gop = g.bytes, yp = y.bytes, dp = grad.bytes)
        fixed (float* gs = gate)
        {
            float* zs = (float*)zp, ds = (float*)dp;
            for (int r = 0; r < n; r++) gs[r] = ShortRows.Dot((float*)gop + (long)r * d, (float*)yp + (long)r * d, d);
            // p = softmax(z / tau) per row, shifted by the row's maximum z[sel]; d logits = d_gate * (onehot(sel) - p) / tau.
            for (int r = 0; r < n; r++)
            {
                float* zr = zs + (long)r * experts, dr = ds + (long)r * experts;
                float max = zr[selected[r]];
                for (int j = 0; j < experts; j++) dr[j] = (zr[j] - max) / tau;
            }
            var all = new Span<float>(ds, n * experts);
            TensorPrimitives.Exp(all, all);
            for (int r = 0; r < n; r++)
            {
                float* dr = ds + (long)r * experts;
                float sum = 0f;
                for (int j = 0; j < experts; j++) sum += dr[j];
                float scale = -gs[r] / (tau * sum);
                for (int j = 0; j < experts; j++) dr[j] *= scale;
                dr[selected[r]] += gs[r] / tau;
            }
        }
        return new List<Tensor> { g, grad, null!, null!, null! };
    }
}
