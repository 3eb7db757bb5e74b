using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

using RecDistill.Distillation;

namespace RecDistill.Kernels;

/// <summary>
/// Dropout masks and uniform noise for the per-batch losses, generated in C# on the CPU. libtorch's
/// bernoulli and rand draw a few nanoseconds per element through its generator; here element i of a
/// call is a hash of (seed, i) (SplitMix64's finaliser), several times cheaper, parallel in fixed
/// chunks, and independent of the thread count. Each call takes its seed from libtorch's generator,
/// so torch.manual_seed (set per epoch by the trainer) governs these draws and resumed runs repeat them.
/// Other devices fall back to libtorch's own generators.
/// </summary>
internal static class CounterRandom
{
    private const int Chunk = 1 << 14;

    /// <summary>Inverted dropout: x with each element zeroed with probability p, the rest scaled by 1 / (1 - p).</summary>
    public static Tensor Dropout(Tensor x, double p)
    {
        if (p <= 0) return x;
        if (x.device_type != DeviceType.CPU) return nn.functional.dropout(x, p, training: true);
        uint threshold = KeepThreshold(p);
        float scale = (float)(1 / (1 - p));
        var mask = Fill(x.shape, (bits, span) =>
        {
            span.Fill(scale);
            DropInPlace(span, bits, 0, threshold, 1f);
        });
        return x * mask;
    }

    /// <summary>
    /// values[i] = Keeps(seed, first + i) ? values[i] * scale : 0, sixteen draws at a time: a dropout
    /// mask applied in place, the same as <see cref="Dropout"/>'s for the same seed and counters.
    /// </summary>
    internal static void DropInPlace(Span<float> values, ulong seed, long first, uint threshold, float scale)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var limit = Vector512.Create(threshold);
            var factor = Vector512.Create(scale);
            for (; i + 16 <= values.Length; i += 16)
            {
                var keep = Vector512.GreaterThanOrEqual(Draws16(seed, first + i), limit).AsSingle();
                (Vector512.Create((ReadOnlySpan<float>)values.Slice(i, 16)) * factor & keep).CopyTo(values.Slice(i, 16));
            }
        }
        for (; i < values.Length; i++) values[i] = Keeps(seed, first + i, threshold) ? values[i] * scale : 0f;
    }

    /// <summary>The 32-bit draws of counters first .. first + 15: (uint)(Hash(seed + first + j) >> 32).</summary>
    private static Vector512<uint> Draws16(ulong seed, long first)
    {
        var low = Vector512.Create(seed + (ulong)first) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
        var high = low + Vector512.Create(8UL);
        return Vector512.Narrow(Hash(low) >> 32, Hash(high) >> 32);
    }

    /// <summary>Keep when a 32-bit draw is at least p * 2^32: P(keep) = 1 - p to within 2^-32.</summary>
    internal static uint KeepThreshold(double p) => (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));

    /// <summary>Whether element i of the dropout mask with this seed is kept (the mask of <see cref="Dropout"/>).</summary>
    internal static bool Keeps(ulong seed, long i, uint threshold) => (uint)(Hash(seed + (ulong)i) >> 32) >= threshold;

    /// <summary>
    /// The counter base of one call: one draw from libtorch's generator, mixed so that consecutive
    /// calls' counters never overlap in practice. Kernels that apply dropout themselves draw it in
    /// the order the libtorch path would call <see cref="Dropout"/>, and so use the same masks. The
    /// draw comes from the thread's <see cref="LossGenerator"/>.
    /// </summary>
    internal static ulong NextSeed() =>
        Hash((ulong)torch.randint(long.MaxValue, new long[] { 1 }, dtype: ScalarType.Int64, generator: LossGenerator.For(CPU))
            .item<long>()) * 0x9E3779B97F4A7C15UL;

    /// <summary>Uniform floats in [0, high) of the given shape (24 random bits each).</summary>
    public static Tensor Uniform(long[] shape, double high, Device device)
    {
        if (device.type != DeviceType.CPU) return torch.rand(shape, device: device, generator: LossGenerator.For(device)) * FixedScalars.Of(high);
        float step = UniformStep(high);
        return Fill(shape, (bits, span) => UniformInto(span, bits, 0, step));
    }

    /// <summary>The spacing of <see cref="Uniform"/>'s values in [0, high).</summary>
    internal static float UniformStep(double high) => (float)(high / (1 << 24));

    /// <summary>
    /// values[i] = element first + i of <see cref="Uniform"/> with this seed and step, sixteen draws at a
    /// time (for kernels that draw the noise where they use it).
    /// </summary>
    internal static void UniformInto(Span<float> values, ulong seed, long first, float step)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= values.Length; i += 16)
                Uniform16(seed, first + i, step).CopyTo(values.Slice(i, 16));
        }
        for (; i < values.Length; i++) values[i] = UniformDraw(seed, first + i, step);
    }

    /// <summary>Elements first .. first + 15 of <see cref="Uniform"/> with this seed and step (AVX-512).</summary>
    internal static Vector512<float> Uniform16(ulong seed, long first, float step) =>
        // The top 24 bits of the 32-bit draw are the hash's top 24 bits: the scalar formula's value.
        Vector512.ConvertToSingle(Draws16(seed, first) >> 8) * Vector512.Create(step);

    /// <summary>Element i of <see cref="Uniform"/> with this seed: the top 24 bits of its hash, times the step.</summary>
    internal static float UniformDraw(ulong seed, long i, float step) => (Hash(seed + (ulong)i) >> 40) * step;

    /// <summary>A float32 tensor whose chunk c is filled by body(counter of its first element, chunk).</summary>
    private static unsafe Tensor Fill(long[] shape, SpanFiller body)
    {
        var result = torch.empty(shape, dtype: ScalarType.Float32);
        long n = result.numel();
        if (n == 0) return result;
        ulong seed = NextSeed();
        fixed (byte* bytes = result.bytes)
        {
            nint ptr = (nint)bytes;
            int chunks = (int)((n + Chunk - 1) / Chunk);
            RowChunks.Run(chunks, 4, (from, to) =>
            {
                for (int c = from; c < to; c++)
                {
                    long start = (long)c * Chunk;
                    int len = (int)Math.Min(Chunk, n - start);
                    body(seed + (ulong)start, new Span<float>((float*)ptr + start, len));
                }
            });
        }
        return result;
    }

    private delegate void SpanFiller(ulong firstCounter, Span<float> span);

    /// <summary>SplitMix64's output function: a bijective 64-bit mix with good avalanche.</summary>
    private static ulong Hash(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary><see cref="Hash(ulong)"/> on eight counters at once.</summary>
    private static Vector512<ulong> Hash(Vector512<ulong> z)
    {
        z += Vector512.Create(0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ (z >> 27)) * Vector512.Create(0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
