using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Security.Cryptography;

namespace RecDistill.Serving.Http;

/// <summary>An id that the loaded model does not hold (or that is not an id of this model's kind at all).</summary>
public sealed class UnknownIdException(string kind, string id)
    : KeyNotFoundException($"{kind} '{id}' is not in the model")
{
    /// <summary>"user" or "item".</summary>
    public string Kind { get; } = kind;
    /// <summary>The id as the request gave it.</summary>
    public string Id { get; } = id;
}

/// <summary>One recommended item as the service answers it: its id and its score (a dot product of final vectors).</summary>
public readonly record struct ScoredItem(string Item, float Score);

/// <summary>What is loaded: where from, its checksums, its shape, and when and how fast it was loaded.</summary>
public sealed record ModelInfo(
    string Source, string Sha256, string FormatChecksum, string Backbone, string Precision,
    int Dim, int Users, int Items, long TrainPairs, string Index, DateTimeOffset LoadedAt, double LoadSeconds);

/// <summary>
/// The one class through which the HTTP service reaches the model (RecDistill.Serving): ids as strings in and
/// out, top-K for a known user, for a batch, for a new user given items (fold-in), items similar to an item,
/// the most popular items. Immutable after construction; any number of threads may query it.
/// <para>
/// Ids are the model's own strings, compared exactly ("007" and "7" are two ids). Exact search forwards
/// to <see cref="Recommender"/> (known users, batches, fold-in, similar items, popular items); the HNSW
/// index answers from its candidates, rescored with the same vectors (fold-in's vector from
/// <see cref="Recommender.FoldIn(IReadOnlyList{string})"/>).
/// </para>
/// </summary>
public sealed class ModelAdapter : IDisposable
{
    private readonly CompactModel _model;
    private readonly Recommender _recommender;
    private readonly HnswIndex? _hnsw;

    /// <summary>What is loaded: source, checksums, shape, index kind, and when and how fast it was loaded.</summary>
    public ModelInfo Info { get; }

    /// <summary>HNSW candidates per query (<see cref="HnswOptions.Candidates"/>); settable only for the recall benchmark.</summary>
    internal int Candidates { get; set; }

    private ModelAdapter(CompactModel model, ServingOptions options, string source, string sha256, string formatChecksum, long started)
    {
        _model = model;
        _recommender = new Recommender(model);
        int ni = model.NumItems, d = model.Dim;
        Candidates = options.Hnsw.Candidates;
        if (options.Index == IndexKind.Hnsw)
        {
            // The index's rows: float32 item vectors, row-major (only this path needs a copy of them).
            var rows = new float[(long)ni * d <= Array.MaxLength ? ni * d : throw new NotSupportedException("item table too large")];
            for (int i = 0; i < ni; i++) model.ItemVector(i, rows.AsSpan(i * d, d));
            _hnsw = HnswIndex.Build(rows, ni, d, options.Hnsw);
        }
        Info = new ModelInfo(source, sha256, formatChecksum, model.Backbone.ToString().ToLowerInvariant(),
            model.Precision.ToString().ToLowerInvariant(), d, model.NumUsers, ni, model.TrainPairs,
            options.Index.ToString().ToLowerInvariant(), DateTimeOffset.UtcNow, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>
    /// Reads the file once (so the checksums describe exactly the bytes loaded), checks and loads it, and
    /// builds the index. A damaged file throws <see cref="CompactModelFormatException"/>.
    /// </summary>
    public static ModelAdapter Load(string path, ServingOptions options) => Load(File.ReadAllBytes(path), path, options);

    /// <summary>A model file's bytes, checked and loaded; <paramref name="source"/> names it in errors and in <see cref="Info"/>.</summary>
    public static ModelAdapter Load(byte[] bytes, string source, ServingOptions options)
    {
        long started = Stopwatch.GetTimestamp();
        var (sha256, checksum) = Checksums(bytes); // first: reading zeroes the file's checksum field in the buffer
        var model = CompactModelFile.Deserialize(bytes, source);
        return new ModelAdapter(model, options, source, sha256, checksum, started);
    }

    /// <summary>An adapter over a model already in memory (tests, benchmarks); its checksums are those of its file form.</summary>
    public static ModelAdapter Create(CompactModel model, ServingOptions options, string source = "(memory)")
    {
        long started = Stopwatch.GetTimestamp();
        var (sha256, checksum) = Checksums(CompactModelFile.Serialize(model));
        return new ModelAdapter(model, options, source, sha256, checksum, started);
    }

    /// <summary>SHA-256 of a model file (as `sha256sum` prints it) and the file's own checksum field (hex).</summary>
    public static (string Sha256, string FormatChecksum) Checksums(byte[] file) =>
        (Convert.ToHexStringLower(SHA256.HashData(file)),
         file.Length < CompactModelFile.HeaderSize ? "" : BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(CompactModelFile.ChecksumOffset, 8)).ToString("x16", CultureInfo.InvariantCulture));

    /// <summary>Number of items in the model.</summary>
    public int NumItems => _model.NumItems;

    /// <summary>Whether the model holds this user id (exact, ordinal comparison).</summary>
    public bool ContainsUser(string id) => _model.TryGetUser(id, out _);

    /// <summary>Whether the model holds this item id (exact, ordinal comparison).</summary>
    public bool ContainsItem(string id) => TryItem(id, out _);

    /// <summary>
    /// The k best items for a known user, best first, leaving out the user's train items and the items in
    /// <paramref name="exclude"/> (ids the model does not hold are ignored there: they cannot be recommended anyway).
    /// </summary>
    public IReadOnlyList<ScoredItem> Recommend(string user, int k, IReadOnlyCollection<string>? exclude = null)
    {
        CheckK(k);
        int dense = User(user);
        var extra = Dense(exclude);
        if (_hnsw is not null)
            return Approximate(UserVector(dense), k, Merge(_model.TrainItems(dense), extra));
        var excluded = extra.Select(i => _model.ItemIds[i]).ToHashSet();
        return _recommender.Recommend(user, k + excluded.Count)
            .Where(r => !excluded.Contains(r.ItemId)).Take(k).Select(Scored).ToArray();
    }

    /// <summary><see cref="Recommend"/> for many users (no extra exclusions); result j belongs to users[j]. Every id is checked first.</summary>
    public IReadOnlyList<ScoredItem>[] RecommendBatch(IReadOnlyList<string> users, int k)
    {
        CheckK(k);
        var dense = users.Select(User).ToArray();
        if (_hnsw is not null)
            return dense.Select(u => Approximate(UserVector(u), k, _model.TrainItems(u).ToArray())).ToArray();
        var lists = _recommender.RecommendBatch(users, k);
        return lists.Select(l => (IReadOnlyList<ScoredItem>)l.Select(Scored).ToArray()).ToArray();
    }

    /// <summary>
    /// Top-K for a user the model has never seen, from the items they interacted with: the library's fold-in
    /// (<see cref="Recommender.FoldIn(IReadOnlyList{string})"/>, regularised least squares; docs/serving.md), all
    /// items scored, the given ones left out. Unknown items throw <see cref="UnknownIdException"/>.
    /// </summary>
    public IReadOnlyList<ScoredItem> RecommendFromItems(IReadOnlyList<string> items, int k)
    {
        CheckK(k);
        if (items.Count == 0) throw new ArgumentException("fold-in needs at least one item");
        var given = items.Select(Item).Distinct().Order().ToArray();
        if (_hnsw is null) return _recommender.RecommendFromItems(items, k).Select(Scored).ToArray();
        return Approximate(_recommender.FoldIn(items), k, given);
    }

    /// <summary>The k items with the largest inner product with the item's vector, the item itself left out.</summary>
    public IReadOnlyList<ScoredItem> Similar(string item, int k)
    {
        CheckK(k);
        int dense = Item(item);
        if (_hnsw is null) return _recommender.Similar(item, k).Select(Scored).ToArray();
        var v = new float[_model.Dim];
        _model.ItemVector(dense, v);
        return Approximate(v, k, new[] { dense });
    }

    /// <summary>The k items with the most train interactions (score = that count).</summary>
    public IReadOnlyList<ScoredItem> Popular(int k)
    {
        CheckK(k);
        return _recommender.Popular(k).Select(Scored).ToArray();
    }

    /// <summary>
    /// HNSW candidates (at least k plus the items to leave out), rescored exactly, the best k kept; when
    /// the graph yields fewer than k usable items while the catalogue has them, the exact path answers.
    /// </summary>
    private ScoredItem[] Approximate(float[] u, int k, int[] leaveOut)
    {
        int count = Math.Min(_model.NumItems, Math.Max(Candidates, k + leaveOut.Length));
        return FromCandidates(u, k, leaveOut, _hnsw!.Search(u, count));
    }

    /// <summary>The best k of candidate items <paramref name="ids"/> rescored exactly, or the exact path when too few are usable.</summary>
    internal ScoredItem[] FromCandidates(float[] u, int k, int[] leaveOut, IReadOnlyList<int> ids)
    {
        int ni = _model.NumItems, d = _model.Dim;
        var v = new float[d];
        var scored = new List<(int Item, float Score)>(ids.Count);
        foreach (var i in ids)
        {
            if (Array.BinarySearch(leaveOut, i) >= 0) continue;
            _model.ItemVector(i, v);
            scored.Add((i, TensorPrimitives.Dot<float>(u, v)));
        }
        if (scored.Count < Math.Min(k, ni - leaveOut.Length)) return _recommender.RecommendForVector(u, k, leaveOut).Select(Scored).ToArray();
        scored.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Item.CompareTo(b.Item));
        var names = _model.ItemIds;
        var result = new ScoredItem[Math.Min(k, scored.Count)];
        for (int j = 0; j < result.Length; j++) result[j] = new ScoredItem(names[scored[j].Item], scored[j].Score);
        return result;
    }

    private float[] UserVector(int dense)
    {
        var u = new float[_model.Dim];
        _model.UserVector(dense, u);
        return u;
    }

    /// <summary>Dense ids of the known items among <paramref name="ids"/>, ascending and distinct.</summary>
    private int[] Dense(IReadOnlyCollection<string>? ids)
    {
        if (ids is null || ids.Count == 0) return Array.Empty<int>();
        var result = new List<int>(ids.Count);
        foreach (var id in ids)
            if (TryItem(id, out int i)) result.Add(i);
        return result.Distinct().Order().ToArray();
    }

    private static int[] Merge(ReadOnlySpan<int> a, int[] b)
    {
        var all = new int[a.Length + b.Length];
        a.CopyTo(all);
        b.CopyTo(all, a.Length);
        return all.Distinct().Order().ToArray();
    }

    private int User(string id) => _model.TryGetUser(id, out int dense) ? dense : throw new UnknownIdException("user", id);

    private int Item(string id) => TryItem(id, out int dense) ? dense : throw new UnknownIdException("item", id);

    private bool TryItem(string id, out int dense) => _model.TryGetItem(id, out dense);

    private static ScoredItem Scored(Recommendation r) => new(r.ItemId, r.Score);

    private static void CheckK(int k)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
    }

    /// <summary>Frees the HNSW index's native memory, if there is one.</summary>
    public void Dispose() => _hnsw?.Dispose();
}
