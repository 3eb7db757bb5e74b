namespace RecDistill.Serving;

/// <summary>
/// An exported model, everything serving needs and nothing else: the final user and item vectors
/// (for LightGCN the propagated ones) in one precision, the raw id of every dense user and item,
/// and each user's train items (to leave out what the user has already seen).
/// Immutable once built, so any number of threads may read it.
/// </summary>
public sealed class CompactModel
{
    private readonly long[] _userRaw, _itemRaw;
    private readonly long[] _trainOffsets;
    private readonly int[] _trainItems;
    private readonly Dictionary<long, int> _userIndex;

    internal VectorTable Users { get; }
    internal VectorTable Items { get; }

    public ModelBackbone Backbone { get; }
    /// <summary>LightGCN propagation layers the vectors went through (0 for BPR-MF).</summary>
    public int Layers { get; }
    public int Dim => Users.Dim;
    public int NumUsers => _userRaw.Length;
    public int NumItems => _itemRaw.Length;
    public VectorPrecision Precision => Users.Precision;
    /// <summary>Distinct (user, train item) pairs stored.</summary>
    public long TrainPairs => _trainItems.Length;
    /// <summary>Raw id of each dense user (dense id = index).</summary>
    public ReadOnlySpan<long> UserRawIds => _userRaw;
    /// <summary>Raw id of each dense item (dense id = index).</summary>
    public ReadOnlySpan<long> ItemRawIds => _itemRaw;
    /// <summary>Size of the model in the file format, in bytes.</summary>
    public long FileLength => CompactModelFile.LengthOf(Dim, NumUsers, NumItems, Precision, TrainPairs);

    internal ReadOnlySpan<long> TrainOffsets => _trainOffsets;

    internal CompactModel(ModelBackbone backbone, int layers, VectorTable users, VectorTable items,
        long[] userRaw, long[] itemRaw, long[] trainOffsets, int[] trainItems, Func<string, Exception> error)
    {
        Backbone = backbone; Layers = layers; Users = users; Items = items;
        _userRaw = userRaw; _itemRaw = itemRaw; _trainOffsets = trainOffsets; _trainItems = trainItems;
        _userIndex = new Dictionary<long, int>(userRaw.Length);
        for (int u = 0; u < userRaw.Length; u++)
            if (!_userIndex.TryAdd(userRaw[u], u)) throw error($"user id {userRaw[u]} appears twice");
        var itemIds = new HashSet<long>(itemRaw.Length);
        foreach (var i in itemRaw) if (!itemIds.Add(i)) throw error($"item id {i} appears twice");
        if (trainOffsets.Length != userRaw.Length + 1 || trainOffsets[0] != 0 || trainOffsets[^1] != trainItems.Length)
            throw error("train item offsets do not cover the train items");
        for (int u = 0; u < userRaw.Length; u++)
        {
            long a = trainOffsets[u], b = trainOffsets[u + 1];
            if (b < a) throw error($"train item offsets decrease at user {u}");
            for (long j = a; j < b; j++)
            {
                int i = trainItems[j];
                if ((uint)i >= (uint)itemRaw.Length) throw error($"user {u} has train item {i} out of range");
                if (j > a && trainItems[j - 1] >= i) throw error($"user {u}'s train items are not strictly ascending");
            }
        }
    }

    /// <summary>
    /// Builds a model from row-major float32 final vectors ([users x dim] and [items x dim]), the raw id
    /// maps and each dense user's train items (dense ids, any order, duplicates dropped).
    /// </summary>
    public static CompactModel Create(ModelBackbone backbone, int layers, int dim,
        ReadOnlySpan<float> userVectors, ReadOnlySpan<float> itemVectors,
        IReadOnlyList<long> userRawIds, IReadOnlyList<long> itemRawIds,
        IReadOnlyList<IReadOnlyList<int>> trainItems, VectorPrecision precision)
    {
        if (!Enum.IsDefined(backbone)) throw new ArgumentOutOfRangeException(nameof(backbone));
        if (!Enum.IsDefined(precision)) throw new ArgumentOutOfRangeException(nameof(precision));
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), "dim must be positive");
        if (layers < 0) throw new ArgumentOutOfRangeException(nameof(layers), "layers must be 0 or more");
        int nu = userRawIds.Count, ni = itemRawIds.Count;
        if (nu == 0 || ni == 0) throw new ArgumentException("a model needs at least one user and one item");
        if (trainItems.Count != nu) throw new ArgumentException($"{trainItems.Count} train lists for {nu} users");
        var users = VectorTable.Encode(userVectors, nu, dim, precision, dimMajor: false, "user vectors");
        var items = VectorTable.Encode(itemVectors, ni, dim, precision, dimMajor: true, "item vectors");
        var offsets = new long[nu + 1];
        var flat = new List<int>();
        for (int u = 0; u < nu; u++)
        {
            var seen = trainItems[u].Distinct().Order().ToArray();
            foreach (var i in seen)
                if ((uint)i >= (uint)ni) throw new ArgumentException($"user {u} has train item {i}, outside 0..{ni - 1}");
            flat.AddRange(seen);
            offsets[u + 1] = flat.Count;
        }
        return new CompactModel(backbone, layers, users, items, userRawIds.ToArray(), itemRawIds.ToArray(), offsets, flat.ToArray(),
            reason => new ArgumentException(reason));
    }

    /// <summary>Reads and checks a model file; <see cref="CompactModelFormatException"/> says what is wrong with a bad one.</summary>
    public static CompactModel Load(string path) => CompactModelFile.Read(path);

    /// <summary>Writes the model file atomically (a temporary file beside it, then a rename).</summary>
    public void Save(string path) => CompactModelFile.Write(path, this);

    /// <summary>Dense id of a raw user id, or false when the model does not hold that user.</summary>
    public bool TryGetUser(long rawUserId, out int denseUser) => _userIndex.TryGetValue(rawUserId, out denseUser);

    /// <summary>A dense user's train items (dense ids, ascending).</summary>
    public ReadOnlySpan<int> TrainItems(int denseUser)
    {
        if ((uint)denseUser >= (uint)NumUsers) throw new ArgumentOutOfRangeException(nameof(denseUser));
        long a = _trainOffsets[denseUser], b = _trainOffsets[denseUser + 1];
        return _trainItems.AsSpan((int)a, (int)(b - a));
    }

    /// <summary>A dense user's vector as float32 (dequantized for fp16 and int8).</summary>
    public void UserVector(int denseUser, Span<float> destination) => Users.Decode(denseUser, destination);

    /// <summary>A dense item's vector as float32 (dequantized for fp16 and int8).</summary>
    public void ItemVector(int denseItem, Span<float> destination) => Items.Decode(denseItem, destination);

    public override string ToString() =>
        $"{Backbone} d={Dim} {Precision}: {NumUsers} users, {NumItems} items, {TrainPairs} train pairs";
}
