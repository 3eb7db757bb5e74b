using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RecDistill.Serving;

/// <summary>
/// The k best (score, item) pairs of a stream of scores. Better = higher score, then lower item id.
/// Items must be offered in ascending id order (which is how rows are scanned), so a candidate
/// tying the current threshold's score is never better and only scores strictly above it enter;
/// -inf and NaN never enter.
/// Candidates are appended to a buffer of about 2k entries; when it is full, a linear-time selection
/// keeps the k best and raises the threshold to the worst of them. A SIMD compare of 16 scores at a
/// time (8 without AVX-512) skips those that do not beat the threshold. Per row this is O(items + k log k), cheaper than a
/// binary heap (log k work per accepted candidate) when k is in the hundreds.
/// Public because training's full ranking (evaluation, teacher and student top-K lists) selects
/// through it too: one selection rule for serving and training.
/// </summary>
public sealed class TopK
{
    // Each entry is one ulong: order-preserving score bits above, the complement of the item id
    // below, so that a larger key is exactly a better entry and selection compares plain integers.
    private readonly ulong[] _keys;
    private readonly int _k;
    private int _count;
    private float _threshold = float.NegativeInfinity;

    /// <summary>A selector that keeps the <paramref name="k"/> best entries (k at least 1).</summary>
    public TopK(int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        _k = k;
        _keys = new ulong[2 * k + 32];
    }

    /// <summary>How many entries are kept (at most k).</summary>
    public int Count => Math.Min(_count, _k);

    /// <summary>Empties the selection for the next row.</summary>
    public void Clear()
    {
        _count = 0;
        _threshold = float.NegativeInfinity;
    }

    /// <summary>Offers scores[j] for items firstItem + j.</summary>
    public void Offer(ReadOnlySpan<float> scores, int firstItem)
    {
        int j = 0;
        ref float r = ref MemoryMarshal.GetReference(scores);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j <= scores.Length - 16; j += 16)
            {
                // Only the lanes above the threshold are visited, lowest first (ascending ids).
                ulong above = Vector512.GreaterThan(Vector512.LoadUnsafe(ref r, (nuint)j), Vector512.Create(_threshold)).ExtractMostSignificantBits();
                while (above != 0)
                {
                    int t = j + System.Numerics.BitOperations.TrailingZeroCount(above);
                    above &= above - 1;
                    float v = Unsafe.Add(ref r, t);
                    // An Add may have raised the threshold: the lane is checked again.
                    if (v > _threshold) Add(v, firstItem + t);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; j <= scores.Length - 8; j += 8)
            {
                if (!Vector256.GreaterThanAny(Vector256.LoadUnsafe(ref r, (nuint)j), Vector256.Create(_threshold))) continue;
                for (int t = j; t < j + 8; t++)
                    if (scores[t] > _threshold) Add(scores[t], firstItem + t);
            }
        }
        for (; j < scores.Length; j++)
            if (scores[j] > _threshold) Add(scores[j], firstItem + j);
    }

    /// <summary>
    /// Offers a whole row, items firstItem + j, to an empty selection: the same result as <see cref="Offer"/>,
    /// found faster for k in the tens and hundreds. The scan starts from a threshold estimated on a sample
    /// of the row (expected to let about 3k scores in instead of several times that, each entry costing
    /// buffer work); when fewer than k scores beat the estimate, the row is scanned again from scratch.
    /// </summary>
    public void OfferRow(ReadOnlySpan<float> scores, int firstItem = 0)
    {
        if (_count == 0 && _threshold == float.NegativeInfinity)
        {
            float estimate = EstimateThreshold(scores);
            if (estimate > float.NegativeInfinity)
            {
                _threshold = estimate;
                Offer(scores, firstItem);
                // At least k scores above the estimate: the k best (ties included) are all among them.
                if (_count >= _k) return;
                Clear();
            }
        }
        Offer(scores, firstItem);
    }

    private const int SampleSize = 512;

    /// <summary>
    /// The r-th largest of SampleSize evenly spaced scores, r chosen so that about 3k scores of the row
    /// exceed it; -inf when the row is too short for a sample to help.
    /// </summary>
    private float EstimateThreshold(ReadOnlySpan<float> scores)
    {
        int n = scores.Length;
        if (_k < 32 || n < 4 * SampleSize) return float.NegativeInfinity;
        int r = Math.Max(6, (int)Math.Ceiling(3.0 * _k * SampleSize / n));
        if (r > SampleSize / 4) return float.NegativeInfinity;
        // The r largest samples so far, descending (insertion into a short array).
        Span<float> best = stackalloc float[r];
        int kept = 0;
        for (int s = 0; s < SampleSize; s++)
        {
            float v = scores[(int)((long)s * n / SampleSize)];
            if (!(v > float.NegativeInfinity) || (kept == r && v <= best[r - 1])) continue;
            int at = kept < r ? kept++ : r - 1;
            while (at > 0 && best[at - 1] < v) { best[at] = best[at - 1]; at--; }
            best[at] = v;
        }
        return kept == r ? best[r - 1] : float.NegativeInfinity;
    }

    private void Add(float score, int item)
    {
        _keys[_count++] = Pack(score, item);
        if (_count == _keys.Length) Shrink();
    }

    /// <summary>Keeps the k best entries (unordered) and raises the threshold to the worst of them.</summary>
    private void Shrink()
    {
        if (_count <= _k) return;
        var keys = _keys.AsSpan(0, _count);
        SelectLargest(keys, _k);
        _count = _k;
        _threshold = UnpackScore(keys[_k - 1]);
    }

    /// <summary>
    /// Reorders keys so that keys[0..k) are the k largest and keys[k - 1] the smallest of them
    /// (quickselect with a median-of-three pivot; keys are distinct since item ids are).
    /// </summary>
    private static void SelectLargest(Span<ulong> a, int k)
    {
        int lo = 0, hi = a.Length - 1, target = k - 1;
        while (hi > lo)
        {
            int mid = lo + ((hi - lo) >> 1);
            ulong x = a[lo], y = a[mid], z = a[hi];
            ulong pivot = Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] > pivot) i++;
                while (a[j] < pivot) j--;
                if (i <= j) { (a[i], a[j]) = (a[j], a[i]); i++; j--; }
            }
            // a[lo..j] >= pivot >= a[i..hi]; anything between equals the pivot.
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return;
        }
    }

    /// <summary>The kept keys sorted ascending (worst first).</summary>
    private Span<ulong> SortedAscending()
    {
        Shrink();
        var keys = _keys.AsSpan(0, Count);
        keys.Sort();
        return keys;
    }

    /// <summary>
    /// Writes the kept item ids best first into destination[0..Count), empties the selection and
    /// returns how many were written.
    /// </summary>
    public int DrainSorted(Span<long> destination)
    {
        var keys = SortedAscending();
        int n = keys.Length;
        if (destination.Length < n) throw new ArgumentException("destination is shorter than Count", nameof(destination));
        for (int i = 0; i < n; i++) destination[i] = UnpackItem(keys[n - 1 - i]);
        Clear();
        return n;
    }

    /// <summary>The kept entries, best first, with their item ids (<paramref name="itemIds"/>[dense index]).</summary>
    public Recommendation[] ToSorted(IReadOnlyList<string> itemIds)
    {
        var keys = SortedAscending();
        var result = new Recommendation[keys.Length];
        for (int i = 0; i < keys.Length; i++)
        {
            var key = keys[keys.Length - 1 - i];
            result[i] = new Recommendation(itemIds[UnpackItem(key)], UnpackScore(key));
        }
        return result;
    }

    private static ulong Pack(float score, int item)
    {
        // + 0f turns -0 into +0, so that the two zeros tie (and the lower id wins) as they compare equal.
        uint bits = BitConverter.SingleToUInt32Bits(score + 0f);
        uint ordered = (bits & 0x8000_0000u) == 0 ? bits | 0x8000_0000u : ~bits;
        return ((ulong)ordered << 32) | (uint.MaxValue - (uint)item);
    }

    private static int UnpackItem(ulong key) => (int)(uint.MaxValue - (uint)key);

    private static float UnpackScore(ulong key)
    {
        uint ordered = (uint)(key >> 32);
        return BitConverter.UInt32BitsToSingle((ordered & 0x8000_0000u) != 0 ? ordered & 0x7FFF_FFFFu : ~ordered);
    }
}
