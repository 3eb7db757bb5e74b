using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// y = x w + b for the projectors' layers, on the CPU through <see cref="Sgemm"/> (forward and both
/// backward products), elsewhere (without AVX-512, or with plain forms chosen) through libtorch's addmm.
/// </summary>
internal sealed class Affine : torch.autograd.SingleTensorFunction<Affine>
{
    public override string Name => nameof(Affine);

    /// <summary>x [n, k], w [k, m], b with m elements ([m] or [1, m]) -> [n, m].</summary>
    public static Tensor Compute(Tensor x, Tensor w, Tensor b)
    {
        bool kernel = KernelSwitch.Uses(KernelSwitch.Sgemm) && Sgemm.IsSupported && x.device_type == DeviceType.CPU && x.dtype == ScalarType.Float32
                      && w.dtype == ScalarType.Float32 && b.dtype == ScalarType.Float32;
        if (!kernel) return torch.addmm(b, x, w, 1, 1);
        if (x.dim() != 2 || w.dim() != 2 || x.shape[1] != w.shape[0] || b.numel() != w.shape[1])
            throw new ArgumentException($"Affine: x [{string.Join(", ", x.shape)}], w [{string.Join(", ", w.shape)}], b [{string.Join(", ", b.shape)}] do not fit");
        return apply(x, w, b);
    }

    /// <summary>x [n, k] times w [k, m] (no bias) through the same kernel.</summary>
    public static Tensor Product(Tensor x, Tensor w) =>
        Compute(x, w, torch.zeros(w.shape[1], dtype: w.dtype, device: w.device));

    public override unsafe Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, w, b) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var xc = x.detach().contiguous();
        var wc = w.detach().contiguous();
        var bc = b.detach().contiguous();
        int n = (int)xc.shape[0], k = (int)xc.shape[1], m = (int)wc.shape[1];
        var y = torch.empty(n, m, dtype: ScalarType.Float32);
        fixed (byte* xp = xc.bytes, wp = wc.bytes, bp = bc.bytes, yp = y.bytes)
            Sgemm.Multiply((float*)xp, k, 1, (float*)wp, m, 1, (float*)yp, n, k, m, (float*)bp);
        ctx.save_for_backward(new List<Tensor> { xc, wc });
        ctx.save_data("x_grad", x.requires_grad);
        ctx.save_data("b_shape", b.shape);
        return y;
    }

    public override unsafe List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (x, w) = (saved[0], saved[1]);
        var g = gradOutput.to(ScalarType.Float32).contiguous();
        int n = (int)x.shape[0], k = (int)x.shape[1], m = (int)w.shape[1];
        Tensor? gx = null;
        var gw = torch.empty(k, m, dtype: ScalarType.Float32);
        fixed (byte* xp = x.bytes, wp = w.bytes, gp = g.bytes, gwp = gw.bytes)
        {
            // dL/dw = x^T g: A(i, j) = x[j, i] (rows of A run down x's columns).
            Sgemm.Multiply((float*)xp, 1, k, (float*)gp, m, 1, (float*)gwp, k, n, m);
            if ((bool)ctx.get_data("x_grad"))
            {
                // dL/dx = g w^T: B(j, i) = w[i, j].
                gx = torch.empty(n, k, dtype: ScalarType.Float32);
                fixed (byte* gxp = gx.bytes)
                    Sgemm.Multiply((float*)gp, m, 1, (float*)wp, 1, m, (float*)gxp, n, m, k);
            }
        }
        var gb = g.sum(new long[] { 0 }).reshape((long[])ctx.get_data("b_shape"));
        return new List<Tensor> { gx!, gw, gb };
    }
}
