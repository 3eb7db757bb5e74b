using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace RecDistill.Serving;

/// <summary>Backbone of the model the vectors came from (informational: serving only needs the final vectors).</summary>
public enum ModelBackbone : byte
{
    /// <summary>BPR-MF: matrix factorization trained with the BPR loss.</summary>
    Bpr = 0,
    /// <summary>LightGCN: the vectors are the propagated (layer-averaged) ones.</summary>
    LightGcn = 1,
}

/// <summary>How the vectors are stored, on disk and in memory.</summary>
public enum VectorPrecision : byte
{
    /// <summary>IEEE float32, exact.</summary>
    Fp32 = 0,
    /// <summary>IEEE float16 (System.Half), half the size.</summary>
    Fp16 = 1,
    /// <summary>Signed bytes in [-127, 127] times one float32 scale per vector (symmetric, per row): about a quarter of the size.</summary>
    Int8 = 2,
}

/// <summary>
/// Count vectors of Dim values in one precision. Row-major: vector v is values [v*Dim, (v+1)*Dim).
/// Dimension-major: value k of vector v is at [k*Count + v] (the item table, so that scoring a block of
/// items is a few long SIMD passes, one per dimension). Int8 keeps one scale per vector.
/// </summary>
internal sealed class VectorTable
{
    public int Count { get; }
    public int Dim { get; }
    public bool DimMajor { get; }
    public VectorPrecision Precision { get; }
    public float[]? F32 { get; private init; }
    public Half[]? F16 { get; private init; }
    public sbyte[]? I8 { get; private init; }
    /// <summary>Int8 only: value = I8 * Scales[vector].</summary>
    public float[]? Scales { get; private init; }

    private VectorTable(int count, int dim, bool dimMajor, VectorPrecision precision)
    {
        Count = count; Dim = dim; DimMajor = dimMajor; Precision = precision;
    }

    public long Values => (long)Count * Dim;

    /// <summary>Bytes of this table in the file: the values, and for int8 the scales before them.</summary>
    public static long ByteLength(int count, int dim, VectorPrecision p) => p switch
    {
        VectorPrecision.Fp32 => 4L * count * dim,
        VectorPrecision.Fp16 => 2L * count * dim,
        VectorPrecision.Int8 => 4L * count + (long)count * dim,
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    /// <summary>Encodes row-major float32 vectors; refuses NaN, infinities and (for fp16) values out of range.</summary>
    public static VectorTable Encode(ReadOnlySpan<float> rowMajor, int count, int dim, VectorPrecision p, bool dimMajor, string what)
    {
        if ((long)count * dim != rowMajor.Length)
            throw new ArgumentException($"{what}: {rowMajor.Length} values for {count} vectors of {dim}");
        int bad = FirstNonFinite(rowMajor);
        if (bad >= 0)
            throw new ArgumentException($"{what}: vector {bad / dim} has a non-finite value ({rowMajor[bad]}); refusing to export it");
        long Index(int v, int k) => dimMajor ? (long)k * count + v : (long)v * dim + k;
        switch (p)
        {
            case VectorPrecision.Fp32:
            {
                var f = new float[rowMajor.Length];
                if (!dimMajor) rowMajor.CopyTo(f);
                else for (int v = 0; v < count; v++) for (int k = 0; k < dim; k++) f[Index(v, k)] = rowMajor[v * dim + k];
                return new VectorTable(count, dim, dimMajor, p) { F32 = f };
            }
            case VectorPrecision.Fp16:
            {
                var h = new Half[rowMajor.Length];
                for (int v = 0; v < count; v++)
                    for (int k = 0; k < dim; k++)
                    {
                        float x = rowMajor[v * dim + k];
                        var y = (Half)x;
                        if (Half.IsInfinity(y))
                            throw new ArgumentException($"{what}: vector {v} holds {x}, beyond the fp16 range (±65504); export as fp32 or int8");
                        h[Index(v, k)] = y;
                    }
                return new VectorTable(count, dim, dimMajor, p) { F16 = h };
            }
            case VectorPrecision.Int8:
            {
                var q = new sbyte[rowMajor.Length];
                var scales = new float[count];
                for (int v = 0; v < count; v++)
                {
                    var row = rowMajor.Slice(v * dim, dim);
                    float maxAbs = TensorPrimitives.MaxMagnitude(row);
                    maxAbs = MathF.Abs(maxAbs);
                    if (maxAbs == 0) continue; // an all-zero vector: scale 0, values 0
                    float scale = maxAbs / 127f, inv = 127f / maxAbs;
                    scales[v] = scale;
                    for (int k = 0; k < dim; k++)
                        q[Index(v, k)] = (sbyte)Math.Clamp(MathF.Round(row[k] * inv, MidpointRounding.ToEven), -127f, 127f);
                }
                return new VectorTable(count, dim, dimMajor, p) { I8 = q, Scales = scales };
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(p));
        }
    }

    private static int FirstNonFinite(ReadOnlySpan<float> x)
    {
        for (int i = 0; i < x.Length; i++) if (!float.IsFinite(x[i])) return i;
        return -1;
    }

    /// <summary>Vector v as float32 (dequantized).</summary>
    public void Decode(int v, Span<float> dest)
    {
        if ((uint)v >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(v));
        dest = dest[..Dim];
        if (!DimMajor)
        {
            int o = v * Dim;
            switch (Precision)
            {
                case VectorPrecision.Fp32: F32.AsSpan(o, Dim).CopyTo(dest); break;
                case VectorPrecision.Fp16: TensorPrimitives.ConvertToSingle(F16.AsSpan(o, Dim), dest); break;
                default:
                    Kernels.Widen(I8.AsSpan(o, Dim), dest);
                    TensorPrimitives.Multiply(dest, Scales![v], dest);
                    break;
            }
            return;
        }
        for (int k = 0; k < Dim; k++)
        {
            long i = (long)k * Count + v;
            dest[k] = Precision switch
            {
                VectorPrecision.Fp32 => F32![i],
                VectorPrecision.Fp16 => (float)F16![i],
                _ => I8![i] * Scales![v],
            };
        }
    }

    /// <summary>The whole table as float32 in its own layout (dequantized; fp32 returns its array, not a copy).</summary>
    public float[] DecodeAll()
    {
        if (Precision == VectorPrecision.Fp32) return F32!;
        var all = new float[Values];
        if (Precision == VectorPrecision.Fp16) TensorPrimitives.ConvertToSingle(F16, all);
        else
        {
            Kernels.Widen(I8, all);
            // Vector v's scale applies to its values: a row in row-major, one of every Count in dimension-major.
            if (DimMajor)
                for (int k = 0; k < Dim; k++) TensorPrimitives.Multiply(all.AsSpan(k * Count, Count), Scales, all.AsSpan(k * Count, Count));
            else
                for (int v = 0; v < Count; v++) TensorPrimitives.Multiply(all.AsSpan(v * Dim, Dim), Scales![v], all.AsSpan(v * Dim, Dim));
        }
        return all;
    }

    /// <summary>Writes the file section: int8 scales first, then the values in the table's layout.</summary>
    public void WriteTo(Span<byte> dest)
    {
        switch (Precision)
        {
            case VectorPrecision.Fp32: MemoryMarshal.AsBytes(F32.AsSpan()).CopyTo(dest); break;
            case VectorPrecision.Fp16: MemoryMarshal.AsBytes(F16.AsSpan()).CopyTo(dest); break;
            default:
                MemoryMarshal.AsBytes(Scales.AsSpan()).CopyTo(dest);
                MemoryMarshal.AsBytes(I8.AsSpan()).CopyTo(dest[(4 * Count)..]);
                break;
        }
    }

    /// <summary>Reads a section written by <see cref="WriteTo"/>; the caller has checked its length.</summary>
    public static VectorTable ReadFrom(ReadOnlySpan<byte> src, int count, int dim, VectorPrecision p, bool dimMajor)
    {
        long n = (long)count * dim;
        return p switch
        {
            VectorPrecision.Fp32 => new VectorTable(count, dim, dimMajor, p) { F32 = MemoryMarshal.Cast<byte, float>(src[..checked((int)(4 * n))]).ToArray() },
            VectorPrecision.Fp16 => new VectorTable(count, dim, dimMajor, p) { F16 = MemoryMarshal.Cast<byte, Half>(src[..checked((int)(2 * n))]).ToArray() },
            _ => new VectorTable(count, dim, dimMajor, p)
            {
                Scales = MemoryMarshal.Cast<byte, float>(src[..(4 * count)]).ToArray(),
                I8 = MemoryMarshal.Cast<byte, sbyte>(src.Slice(4 * count, checked((int)n))).ToArray(),
            },
        };
    }
}
