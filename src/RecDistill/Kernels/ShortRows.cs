using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RecDistill.Kernels;

/// <summary>
/// Dot products and scaled additions of rows, inlined where they are called; made for short rows
/// (a student's 10-64 floats), correct for any width. <c>TensorPrimitives</c> is built for long
/// spans: at a width of 20 its per-call dispatch and masked remainders cost several times the
/// arithmetic, and the output-layer losses make hundreds of thousands of such calls per batch.
/// </summary>
internal static unsafe class ShortRows
{
    /// <summary>sum_k a[k] b[k].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int d)
    {
        int k = 0;
        float s = 0f;
        if (d >= 16)
        {
            var acc = Vector512.Load(a) * Vector512.Load(b);
            for (k = 16; k + 16 <= d; k += 16) acc += Vector512.Load(a + k) * Vector512.Load(b + k);
            s = Vector512.Sum(acc);
        }
        if (k + 8 <= d) { s += Vector256.Sum(Vector256.Load(a + k) * Vector256.Load(b + k)); k += 8; }
        if (k + 4 <= d) { s += Vector128.Sum(Vector128.Load(a + k) * Vector128.Load(b + k)); k += 4; }
        for (; k < d; k++) s += a[k] * b[k];
        return s;
    }

    /// <summary>y[k] = x[k] * a + y[k], each product rounded before the addition (as TensorPrimitives.MultiplyAdd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(float* x, float a, float* y, int d)
    {
        int k = 0;
        if (d >= 16)
        {
            var va = Vector512.Create(a);
            for (; k + 16 <= d; k += 16) (Vector512.Load(x + k) * va + Vector512.Load(y + k)).Store(y + k);
        }
        if (k + 8 <= d) { (Vector256.Load(x + k) * Vector256.Create(a) + Vector256.Load(y + k)).Store(y + k); k += 8; }
        if (k + 4 <= d) { (Vector128.Load(x + k) * Vector128.Create(a) + Vector128.Load(y + k)).Store(y + k); k += 4; }
        for (; k < d; k++) y[k] = x[k] * a + y[k];
    }
}
