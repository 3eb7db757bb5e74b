using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// Dropout masks and uniform noise for the per-batch losses, generated in C# on the CPU. libtorch's
/// bernoulli and rand draw a few nanoseconds per element through its generator; here element i of a
/// call is a hash of (seed, i) (SplitMix64's finaliser), several times cheaper, parallel in fixed
/// chunks, and independent of the thread count. Each call takes its seed from libtorch's generator,
/// so torch.manual_seed (set per epoch by the trainer) governs these draws and resumed runs repeat them.
/// Other devices fall back to libtorch's own generators.
/// </summary>
public static class CounterRandom
{
    private const int Chunk = 1 << 14;

    /// <summary>Inverted dropout: x with each element zeroed with probability p, the rest scaled by 1 / (1 - p).</summary>
    public static Tensor Dropout(Tensor x, double p)
    {
        if (p <= 0) return x;
        if (x.device_type != DeviceType.CPU) return nn.functional.dropout(x, p, training: true);
        // Keep when a 32-bit draw is at least p * 2^32: P(keep) = 1 - p to within 2^-32.
        uint threshold = (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));
        float scale = (float)(1 / (1 - p));
        var mask = Fill(x.shape, (bits, span) =>
        {
            for (int i = 0; i < span.Length; i++) span[i] = (uint)(Hash(bits + (ulong)i) >> 32) >= threshold ? scale : 0f;
        });
        return x * mask;
    }

    /// <summary>Uniform floats in [0, high) of the given shape (24 random bits each).</summary>
    public static Tensor Uniform(long[] shape, double high, Device device)
    {
        if (device.type != DeviceType.CPU) return torch.rand(shape, device: device) * FixedScalars.Of(high);
        float step = (float)(high / (1 << 24));
        return Fill(shape, (bits, span) =>
        {
            for (int i = 0; i < span.Length; i++) span[i] = (Hash(bits + (ulong)i) >> 40) * step;
        });
    }

    /// <summary>A float32 tensor whose chunk c is filled by body(counter of its first element, chunk).</summary>
    private static unsafe Tensor Fill(long[] shape, SpanFiller body)
    {
        var result = torch.empty(shape, dtype: ScalarType.Float32);
        long n = result.numel();
        if (n == 0) return result;
        // One draw from libtorch's generator, mixed so that consecutive calls' counters never overlap in practice.
        ulong seed = Hash((ulong)torch.randint(long.MaxValue, new long[] { 1 }, dtype: ScalarType.Int64).item<long>()) * 0x9E3779B97F4A7C15UL;
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
}
