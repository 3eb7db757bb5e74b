using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// Scalars passed to libtorch on every batch, created once for the life of the process.
/// A Scalar that C# creates implicitly (from `true`, a float, a double) is freed by its finalizer,
/// which may run while the native call that received its handle is still reading it: a long
/// distillation run once failed in index_fill_ with libtorch's "toBool" assertion on such a
/// Scalar after some 6,000 batches. Static instances are never finalized.
/// </summary>
internal static class FixedScalars
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<double, Scalar> Cache = new();

    /// <summary>
    /// The Scalar of a value, created once and kept for the life of the process: for settings
    /// (lambda, tau, ...) and constants used on every batch. Implicit conversions there would create
    /// a Scalar per call that the finalizer can free mid-call (a LightGCN HTD run failed in pow with
    /// "Unknown scalar type" after 135 epochs).
    /// </summary>
#pragma warning disable RD0001 // the one place a Scalar is made outside a field or using: it stays in Cache for the process
    public static Scalar Of(double value) => Cache.GetOrAdd(value, static v => v);
#pragma warning restore RD0001

    /// <summary>
    /// a + b with the alpha of 1 held here. TorchSharp's own `a + b` (Tensor.add(Tensor), also
    /// Tensor + Scalar and Scalar - Tensor) passes an implicit Scalar 1 as alpha, which the finalizer
    /// can free mid-call: a LightGCN HTD run failed in add with libtorch's "toFloat" assertion after
    /// 250 epochs. Per-batch and per-epoch code uses these instead of the operators.
    /// </summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, UnitAlpha);

    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, UnitAlpha);

    /// <summary>a += b in place, with the alpha of 1 held here (TorchSharp's add_(b) passes an implicit one).</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, UnitAlpha);

    /// <summary>x², as TorchSharp's square() computes it (pow with the integer 2), with the exponent held here.</summary>
    public static Tensor Squared(this Tensor x) => x.pow(IntTwo);

    /// <summary>1 - x (the operator would pass an implicit alpha, see <see cref="Plus(Tensor, Tensor)"/>).</summary>
    public static Tensor OneMinus(Tensor x) => x.neg().add(One, UnitAlpha);

    /// <summary>Integral, so that it also serves integer tensors.</summary>
    private static readonly Scalar UnitAlpha = 1;
    private static readonly Scalar IntZero = 0;
    private static readonly Scalar IntTwo = 2;

    /// <summary>
    /// 0, 1, ..., n - 1 (TorchSharp's arange(stop) makes implicit Scalars of its start and step; here
    /// they live for the process and the stop until the call has returned).
    /// </summary>
    public static Tensor Arange(long n, ScalarType dtype, Device? device)
    {
        using Scalar stop = n;
        return torch.arange(IntZero, stop, UnitAlpha, dtype, device);
    }

    public static readonly Scalar True = true;
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity;
    public static readonly Scalar Zero = 0.0f;
    public static readonly Scalar One = 1.0f;
}
