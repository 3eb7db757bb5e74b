using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RecDistill.Kernels;

/// <summary>
/// fp32 matrix product C = A B (+ a bias row) with AVX-512, for the CPU: evaluation's scores
/// (TopKRanking) and HTD's loss (TopologyLoss). libtorch's fp32 GEMM goes through MKL, which on this
/// project's AMD EPYC machines takes its generic code path (MKL_VERBOSE reports "Intel(R)
/// Architecture processors"); a BPR d=200 teacher's whole run is 19% shorter with this kernel for
/// evaluation, while the projectors' layers gained under 15% and use libtorch
/// (results/perf/kernel-ab-whole-runs-f3c29e9). A and B are read through strides, so transposed operands (the
/// backward products) need no copy. B is packed once per call into panels of 32 columns; each
/// output element is summed by one thread in a fixed order, so results do not depend on the thread
/// count.
/// </summary>
internal static unsafe class Sgemm
{
    private const int MR = 8, NR = 32, KC = 256, PanelGroup = 16;

    /// <summary>Columns per panel of a packed B (<see cref="PackedMatrix.Prefix"/> takes whole panels).</summary>
    public const int PanelWidth = NR;

    /// <summary>
    /// A mask of lanes 0 .. count - 1 (none for count &lt;= 0, all for count &gt;= 16), for the masked loads
    /// and stores at a row's ragged end.
    /// </summary>
    internal static Vector512<float> FirstLanes(int count) =>
        Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    /// <summary>Whether the kernel can run here (AVX-512); callers fall back to libtorch otherwise.</summary>
    public static bool IsSupported => Vector512.IsHardwareAccelerated;

    /// <summary>
    /// c[i * cRow + j] = sum_k A(i, k) B(k, j) (+ bias[j]), with A(i, k) = a[i * aRow + k * aCol] and
    /// B(k, j) = b[k * bRow + j * bCol]; C's rows are cRow apart (default n: row-major [m, n]) and are
    /// overwritten in columns 0..n-1.
    /// </summary>
    public static void Multiply(float* a, long aRow, long aCol, float* b, long bRow, long bCol, float* c,
        int m, int k, int n, float* bias = null, long cRow = 0, long* cRowIndex = null)
    {
        using var packed = new PackedMatrix(b, bRow, bCol, k, n);
        Multiply(a, aRow, aCol, packed, c, m, bias, cRow, cRowIndex);
    }

    /// <summary>
    /// C = A B (+ bias) with B packed beforehand (to multiply many row batches by the same B). With
    /// <paramref name="cRowIndex"/>, row i of the product is written to C's row cRowIndex[i] (rows
    /// scattered in place, without a copy through a buffer; the indices must be distinct).
    /// </summary>
    public static void Multiply(float* a, long aRow, long aCol, PackedMatrix b, float* c, int m, float* bias = null, long cRow = 0,
        long* cRowIndex = null)
    {
        int k = b.Rows, n = b.Columns;
        if (cRow == 0) cRow = n;
        if (cRow < n) throw new ArgumentOutOfRangeException(nameof(cRow), "C's rows overlap");
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) c[i * cRow + j] = bias is null ? 0f : bias[j];
            return;
        }
        nint A = (nint)a, P = (nint)b.Data, C = (nint)c, Bias = (nint)bias, Index = (nint)cRowIndex;
        // Row chunks of whole 8-row blocks; small products run on the calling thread.
        long work = (long)m * k * n;
        int chunk = work < (1L << 22) ? m : Math.Max(MR, (m / (4 * Math.Max(1, TorchSharp.torch.get_num_threads())) + MR - 1) / MR * MR);
        RowChunks.Run(m, chunk, (from, to) =>
            Rows((float*)A, aRow, aCol, (float*)P, (float*)C, cRow, (long*)Index, (float*)Bias, from, to, k, n));
    }

    /// <summary>B [k, n] packed for the kernel: panels [panel][k][32], the columns past n zero; native, 64-byte aligned.</summary>
    public sealed class PackedMatrix : IDisposable
    {
        private readonly bool _owner = true;

        public PackedMatrix(float* b, long bRow, long bCol, int k, int n)
        {
            if (!IsSupported) throw new PlatformNotSupportedException("Sgemm needs AVX-512");
            Rows = k; Columns = n;
            long panels = (n + NR - 1) / NR;
            Data = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, panels * k * NR * sizeof(float)), 64);
            Pack(b, bRow, bCol, Data, k, n);
        }

        private PackedMatrix(PackedMatrix whole, int columns)
        {
            Rows = whole.Rows; Columns = columns; Data = whole.Data;
            _owner = false;
        }

        public int Rows { get; }
        public int Columns { get; }
        public float* Data { get; private set; }

        /// <summary>
        /// B's first columns (a whole number of 32-column panels, or all of them), without a copy: a view
        /// that lives as long as this matrix and frees nothing.
        /// </summary>
        public PackedMatrix Prefix(int columns)
        {
            if (columns < 0 || columns > Columns || (columns % NR != 0 && columns != Columns))
                throw new ArgumentOutOfRangeException(nameof(columns), $"{columns} of {Columns} columns: whole panels of {NR} only");
            return new PackedMatrix(this, columns);
        }

        public void Dispose()
        {
            if (Data is null || !_owner) return;
            NativeMemory.AlignedFree(Data);
            Data = null;
        }
    }

    /// <summary>B into panels [panel][k][32], the columns past n zero.</summary>
    private static void Pack(float* b, long bRow, long bCol, float* packed, int k, int n)
    {
        int panels = (n + NR - 1) / NR;
        for (int p = 0; p < panels; p++)
        {
            int cols = Math.Min(NR, n - p * NR);
            float* dst = packed + (long)p * k * NR;
            // Rows of B's columns p * 32 .. + cols as two masked vector copies (the columns past n zero):
            // a copy call per 128 bytes cost more than the copy.
            var m0 = FirstLanes(cols);
            var m1 = FirstLanes(cols - 16);
            // The gathers' masks of 8 lanes are the halves of the two 16-lane masks.
            var (g0, g1, g2, g3) = (m0.GetLower(), m0.GetUpper(), m1.GetLower(), m1.GetUpper());
            bool gather = bCol != 1 && bCol * NR < int.MaxValue;
            var at = Vector256<int>.Indices * Vector256.Create((int)Math.Min(bCol, int.MaxValue));
            for (int kk = 0; kk < k; kk++)
            {
                float* src = b + kk * bRow + (long)p * NR * bCol;
                float* d = dst + kk * NR;
                if (bCol == 1)
                {
                    Avx512F.MaskLoad(src, m0, default).Store(d);
                    Avx512F.MaskLoad(src + 16, m1, default).Store(d + 16);
                    continue;
                }
                if (gather)
                {
                    // Strided columns (B transposed in memory) as four masked gathers of 8 (lanes past n zero).
                    Avx2.GatherMaskVector256(default, src, at, g0, 4).Store(d);
                    Avx2.GatherMaskVector256(default, src + 8 * bCol, at, g1, 4).Store(d + 8);
                    Avx2.GatherMaskVector256(default, src + 16 * bCol, at, g2, 4).Store(d + 16);
                    Avx2.GatherMaskVector256(default, src + 24 * bCol, at, g3, 4).Store(d + 24);
                    continue;
                }
                for (int j = 0; j < cols; j++) d[j] = src[j * bCol];
                for (int j = cols; j < NR; j++) d[j] = 0f;
            }
        }
    }

    private static void Rows(float* a, long aRow, long aCol, float* packed, float* c, long cRow, long* cRowIndex, float* bias,
        int from, int to, int k, int n)
    {
        int panels = (n + NR - 1) / NR;
        float* tile = stackalloc float[MR * NR];
        // A partial last block of rows is copied to [kc][8] with the missing rows zero; whole blocks are
        // read in place. Loop order: panel group -> k block -> row block -> panel, so that the group's
        // k-block slice of B (at most PanelGroup x 256 x 32 floats, 512 KB) stays in L2 while all
        // row blocks pass over it; wide B (ranking all items) would otherwise stream from memory.
        float* block = stackalloc float[MR * KC];
        var rowStart = stackalloc float*[MR];
        var tileRows = stackalloc float*[MR];
        for (int r = 0; r < MR; r++) tileRows[r] = tile + r * NR;
        for (int p0 = 0; p0 < panels; p0 += PanelGroup)
        {
            int p1 = Math.Min(panels, p0 + PanelGroup);
            for (int k0 = 0; k0 < k; k0 += KC)
            {
                int kc = Math.Min(KC, k - k0);
                for (int i0 = from; i0 < to; i0 += MR)
                {
                    int mr = Math.Min(MR, to - i0);
                    // Whole 8-row blocks read A in place; only a partial last block is copied (zero-padded).
                    float* direct = mr == MR ? a + i0 * aRow + k0 * aCol : null;
                    if (direct is null)
                    {
                        for (int r = 0; r < MR; r++)
                        {
                            if (r >= mr) { for (int kk = 0; kk < kc; kk++) block[kk * MR + r] = 0f; continue; }
                            float* row = a + (i0 + r) * aRow + k0 * aCol;
                            if (aCol == 1) for (int kk = 0; kk < kc; kk++) block[kk * MR + r] = row[kk];
                            else for (int kk = 0; kk < kc; kk++) block[kk * MR + r] = row[kk * aCol];
                        }
                    }
                    for (int r = 0; r < mr; r++) rowStart[r] = c + (cRowIndex is null ? i0 + r : cRowIndex[i0 + r]) * cRow;
                    for (int p = p0; p < p1; p++)
                    {
                        int cols = Math.Min(NR, n - p * NR);
                        if (mr == MR)
                        {
                            // Whole rows (A read in place): the sums go straight to C, not through the tile buffer;
                            // a last panel narrower than 32 columns is written through a mask.
                            float* tileBias = k0 > 0 || bias is null ? null : bias + p * NR;
                            Kernel(direct, aRow, aCol, packed + ((long)p * k + k0) * NR, kc, rowStart, p * NR, k0 > 0, tileBias, cols);
                            continue;
                        }
                        // The copied block is A(r, kk) = block[kk * 8 + r]: row stride 1, column stride 8.
                        Kernel(block, 1, MR, packed + ((long)p * k + k0) * NR, kc, tileRows, 0, false, null, NR);
                        for (int r = 0; r < mr; r++)
                        {
                            float* dst = rowStart[r] + p * NR;
                            float* src = tile + r * NR;
                            if (cols == NR)
                            {
                                Vector512<float> lo = Vector512.Load(src), hi = Vector512.Load(src + 16);
                                if (k0 > 0) { lo += Vector512.Load(dst); hi += Vector512.Load(dst + 16); }
                                else if (bias is not null) { lo += Vector512.Load(bias + p * NR); hi += Vector512.Load(bias + p * NR + 16); }
                                lo.Store(dst); hi.Store(dst + 16);
                            }
                            else if (k0 > 0) for (int j = 0; j < cols; j++) dst[j] += src[j];
                            else if (bias is not null) for (int j = 0; j < cols; j++) dst[j] = src[j] + bias[p * NR + j];
                            else for (int j = 0; j < cols; j++) dst[j] = src[j];
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// The 8 x 32 sums of A's 8 rows x kc read in place (A(r, kk) = a[r * aRow + kk * aCol]) times the
    /// panel slice [kc][32], stored at rowStart[r] + column: added to what is there (accumulate), else
    /// plus the bias (when given) or as they are, in the first cols columns only (masked when cols &lt; 32).
    /// Blocks of 8 whole rows go straight to C; a partial block of rows goes to a tile buffer first.
    /// Copying A into a block first costs as much as the products when B has one or two panels (the
    /// projectors' narrow layers), and each A value is a broadcast load either way.
    /// </summary>
    private static void Kernel(float* a, long aRow, long aCol, float* bp, int kc, float** rowStart, int column, bool accumulate, float* bias,
        int cols)
    {
        long o1 = aRow, o2 = 2 * aRow, o3 = 3 * aRow, o4 = 4 * aRow, o5 = 5 * aRow, o6 = 6 * aRow, o7 = 7 * aRow;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default,
                         c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int kk = 0; kk < kc; kk++, a += aCol, bp += NR)
        {
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[o1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[o2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[o3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[o4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[o5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[o6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[o7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        Vector512<float> add0 = default, add1 = default;
        bool addBias = !accumulate && bias is not null;
        if (cols < NR)
        {
            // A panel past C's last column: C, the bias and the sums are read and written in the first cols lanes only.
            var m0 = FirstLanes(cols);
            var m1 = FirstLanes(cols - 16);
            if (addBias) { add0 = Avx512F.MaskLoad(bias, m0, default); add1 = Avx512F.MaskLoad(bias + 16, m1, default); }
            PutMasked(rowStart[0] + column, c00, c01, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[1] + column, c10, c11, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[2] + column, c20, c21, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[3] + column, c30, c31, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[4] + column, c40, c41, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[5] + column, c50, c51, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[6] + column, c60, c61, accumulate, addBias, add0, add1, m0, m1);
            PutMasked(rowStart[7] + column, c70, c71, accumulate, addBias, add0, add1, m0, m1);
            return;
        }
        if (addBias) { add0 = Vector512.Load(bias); add1 = Vector512.Load(bias + 16); }
        Put(rowStart[0] + column, c00, c01, accumulate, addBias, add0, add1);
        Put(rowStart[1] + column, c10, c11, accumulate, addBias, add0, add1);
        Put(rowStart[2] + column, c20, c21, accumulate, addBias, add0, add1);
        Put(rowStart[3] + column, c30, c31, accumulate, addBias, add0, add1);
        Put(rowStart[4] + column, c40, c41, accumulate, addBias, add0, add1);
        Put(rowStart[5] + column, c50, c51, accumulate, addBias, add0, add1);
        Put(rowStart[6] + column, c60, c61, accumulate, addBias, add0, add1);
        Put(rowStart[7] + column, c70, c71, accumulate, addBias, add0, add1);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Put(float* dst, Vector512<float> lo, Vector512<float> hi, bool accumulate, bool addBias, Vector512<float> add0, Vector512<float> add1)
    {
        if (accumulate) { lo += Vector512.Load(dst); hi += Vector512.Load(dst + 16); }
        else if (addBias) { lo += add0; hi += add1; }
        lo.Store(dst); hi.Store(dst + 16);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void PutMasked(float* dst, Vector512<float> lo, Vector512<float> hi, bool accumulate, bool addBias, Vector512<float> add0,
        Vector512<float> add1, Vector512<float> m0, Vector512<float> m1)
    {
        if (accumulate) { lo += Avx512F.MaskLoad(dst, m0, default); hi += Avx512F.MaskLoad(dst + 16, m1, default); }
        else if (addBias) { lo += add0; hi += add1; }
        Avx512F.MaskStore(dst, m0, lo); Avx512F.MaskStore(dst + 16, m1, hi);
    }
}
