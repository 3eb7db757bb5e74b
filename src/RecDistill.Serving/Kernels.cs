using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RecDistill.Serving;

/// <summary>Small SIMD helpers that System.Numerics.Tensors does not offer directly.</summary>
internal static class Kernels
{
    /// <summary>dst[i] = src[i] (sbyte to float), 32 values per step where 256-bit vectors are accelerated.</summary>
    public static void Widen(ReadOnlySpan<sbyte> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref sbyte s = ref MemoryMarshal.GetReference(src);
            ref float d = ref MemoryMarshal.GetReference(dst);
            for (; i <= src.Length - 32; i += 32)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                var (a, b) = Vector256.Widen(lo);
                var (c, e) = Vector256.Widen(hi);
                Vector256.ConvertToSingle(a).StoreUnsafe(ref d, (nuint)i);
                Vector256.ConvertToSingle(b).StoreUnsafe(ref d, (nuint)(i + 8));
                Vector256.ConvertToSingle(c).StoreUnsafe(ref d, (nuint)(i + 16));
                Vector256.ConvertToSingle(e).StoreUnsafe(ref d, (nuint)(i + 24));
            }
        }
        for (; i < src.Length; i++) dst[i] = src[i];
    }

    /// <summary>acc[i] += a * x[i] for int8 x, widened in registers (no float copy of x is written).</summary>
    public static void MultiplyAddWidened(ReadOnlySpan<sbyte> x, float a, Span<float> acc)
    {
        if (acc.Length < x.Length) throw new ArgumentException("accumulator too short", nameof(acc));
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref sbyte s = ref MemoryMarshal.GetReference(x);
            ref float d = ref MemoryMarshal.GetReference(acc);
            var va = Vector256.Create(a);
            for (; i <= x.Length - 32; i += 32)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                var (w0, w1) = Vector256.Widen(lo);
                var (w2, w3) = Vector256.Widen(hi);
                Vector256.MultiplyAddEstimate(Vector256.ConvertToSingle(w0), va, Vector256.LoadUnsafe(ref d, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
                Vector256.MultiplyAddEstimate(Vector256.ConvertToSingle(w1), va, Vector256.LoadUnsafe(ref d, (nuint)(i + 8))).StoreUnsafe(ref d, (nuint)(i + 8));
                Vector256.MultiplyAddEstimate(Vector256.ConvertToSingle(w2), va, Vector256.LoadUnsafe(ref d, (nuint)(i + 16))).StoreUnsafe(ref d, (nuint)(i + 16));
                Vector256.MultiplyAddEstimate(Vector256.ConvertToSingle(w3), va, Vector256.LoadUnsafe(ref d, (nuint)(i + 24))).StoreUnsafe(ref d, (nuint)(i + 24));
            }
        }
        for (; i < x.Length; i++) acc[i] += a * x[i];
    }

    /// <summary>
    /// The file checksum: four FNV-1a-style lanes over little-endian 64-bit words (word w goes to lane
    /// w mod 4; a last partial word is zero-padded), each step h = (h xor word) * P, then h ^= h >> 29;
    /// the lanes and finally the byte length are folded into one value the same way.
    /// Every step is a bijection of the word, so any change confined to one word is always detected.
    /// </summary>
    public static ulong Checksum(ReadOnlySpan<byte> data)
    {
        const ulong Basis = 14695981039346656037UL, Prime = 1099511628211UL;
        static ulong Mix(ulong h, ulong w) { h = (h ^ w) * Prime; return h ^ (h >> 29); }
        ulong h0 = Basis, h1 = Basis + 1, h2 = Basis + 2, h3 = Basis + 3;
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        int n = words.Length, i = 0;
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("model files are little-endian; this reader needs a little-endian machine");
        for (; i <= n - 4; i += 4)
        {
            h0 = Mix(h0, words[i]);
            h1 = Mix(h1, words[i + 1]);
            h2 = Mix(h2, words[i + 2]);
            h3 = Mix(h3, words[i + 3]);
        }
        for (; i < n; i++)
        {
            switch (i & 3)
            {
                case 0: h0 = Mix(h0, words[i]); break;
                case 1: h1 = Mix(h1, words[i]); break;
                case 2: h2 = Mix(h2, words[i]); break;
                default: h3 = Mix(h3, words[i]); break;
            }
        }
        int rest = data.Length - 8 * n;
        if (rest > 0)
        {
            Span<byte> last = stackalloc byte[8];
            last.Clear();
            data[(8 * n)..].CopyTo(last);
            ulong w = MemoryMarshal.Read<ulong>(last);
            switch (n & 3)
            {
                case 0: h0 = Mix(h0, w); break;
                case 1: h1 = Mix(h1, w); break;
                case 2: h2 = Mix(h2, w); break;
                default: h3 = Mix(h3, w); break;
            }
        }
        ulong h = Mix(Mix(Mix(Mix(Basis, h0), h1), h2), h3);
        return Mix(h, (ulong)data.Length);
    }
}
