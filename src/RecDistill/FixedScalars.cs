using TorchSharp;

namespace RecDistill;

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
    public static Scalar Of(double value) => Cache.GetOrAdd(value, v => v);

    public static readonly Scalar True = true;
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity;
    public static readonly Scalar Zero = 0.0f;
    public static readonly Scalar One = 1.0f;
}
