using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RecDistill.Serving;

/// <summary>
/// The k best (score, item) pairs seen so far, in a binary min-heap whose root is the worst kept
/// entry. Better = higher score, then lower item id. Items must be offered in ascending id order
/// (which is how the recommender scans them), so a candidate tying the root's score is never better
/// and only scores strictly above the root's enter; -inf and NaN never enter.
/// A 256-bit SIMD pre-check skips 8 scores at a time when none beats the current threshold.
/// </summary>
internal sealed class TopK
{
    private readonly float[] _scores;
    private readonly int[] _items;
    private readonly int _k;
    private int _count;
    private float _threshold = float.NegativeInfinity;

    public TopK(int k)
    {
        _k = k;
        _scores = new float[k];
        _items = new int[k];
    }

    public int Count => _count;

    /// <summary>Offers scores[j] for items firstItem + j.</summary>
    public void Offer(ReadOnlySpan<float> scores, int firstItem)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float r = ref MemoryMarshal.GetReference(scores);
            for (; j <= scores.Length - 8; j += 8)
            {
                if (!Vector256.GreaterThanAny(Vector256.LoadUnsafe(ref r, (nuint)j), Vector256.Create(_threshold))) continue;
                for (int t = j; t < j + 8; t++)
                    if (scores[t] > _threshold) Push(scores[t], firstItem + t);
            }
        }
        for (; j < scores.Length; j++)
            if (scores[j] > _threshold) Push(scores[j], firstItem + j);
    }

    private void Push(float score, int item)
    {
        if (_count < _k)
        {
            int c = _count++;
            _scores[c] = score; _items[c] = item;
            while (c > 0)
            {
                int parent = (c - 1) >> 1;
                if (!Worse(c, parent)) break;
                Swap(c, parent);
                c = parent;
            }
            if (_count == _k) _threshold = _scores[0];
            return;
        }
        _scores[0] = score; _items[0] = item;
        int i = 0;
        while (true)
        {
            int l = 2 * i + 1, w = i;
            if (l < _k && Worse(l, w)) w = l;
            if (l + 1 < _k && Worse(l + 1, w)) w = l + 1;
            if (w == i) break;
            Swap(i, w);
            i = w;
        }
        _threshold = _scores[0];
    }

    private bool Worse(int a, int b) =>
        _scores[a] < _scores[b] || (_scores[a] == _scores[b] && _items[a] > _items[b]);

    private void Swap(int a, int b)
    {
        (_scores[a], _scores[b]) = (_scores[b], _scores[a]);
        (_items[a], _items[b]) = (_items[b], _items[a]);
    }

    /// <summary>The kept entries, best first, with raw item ids.</summary>
    public Recommendation[] ToSorted(ReadOnlySpan<long> itemRawIds)
    {
        var order = new (float Score, int Item)[_count];
        for (int i = 0; i < _count; i++) order[i] = (_scores[i], _items[i]);
        Array.Sort(order, static (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Item.CompareTo(b.Item));
        var result = new Recommendation[_count];
        for (int i = 0; i < _count; i++) result[i] = new Recommendation(itemRawIds[order[i].Item], order[i].Score);
        return result;
    }
}
