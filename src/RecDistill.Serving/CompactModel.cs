namespace RecDistill.Serving;

/// <summary>
/// An exported model, everything serving needs and nothing else: the final user and item vectors
/// (for LightGCN the propagated ones) in one precision, the id of every dense user and item (text;
/// an integer id is text that happens to be digits), and each user's train items (to leave out what
/// the user has already seen). Immutable once built, so any number of threads may read it.
/// </summary>
public sealed class CompactModel
{
    private readonly string[] _userIds, _itemIds;
    private readonly long[] _trainOffsets;
    private readonly int[] _trainItems;
    private readonly Dictionary<string, int> _userIndex, _itemIndex;

    internal VectorTable Users { get; }
    internal VectorTable Items { get; }

    /// <summary>Backbone the vectors came from (informational: scoring uses only the final vectors).</summary>
    public ModelBackbone Backbone { get; }
    /// <summary>LightGCN propagation layers the vectors went through (0 for BPR-MF).</summary>
    public int Layers { get; }
    /// <summary>Length of every user and item vector.</summary>
    public int Dim => Users.Dim;
    /// <summary>Number of users (dense indices 0 to NumUsers - 1).</summary>
    public int NumUsers => _userIds.Length;
    /// <summary>Number of items (dense indices 0 to NumItems - 1).</summary>
    public int NumItems => _itemIds.Length;
    /// <summary>How the user and item vectors are stored (fp32, fp16 or int8).</summary>
    public VectorPrecision Precision => Users.Precision;
    /// <summary>Distinct (user, train item) pairs stored.</summary>
    public long TrainPairs => _trainItems.Length;
    /// <summary>The id of each dense user (dense index = position).</summary>
    public IReadOnlyList<string> UserIds => _userIds;
    /// <summary>The id of each dense item (dense index = position).</summary>
    public IReadOnlyList<string> ItemIds => _itemIds;
    /// <summary>Size of the model in the current file format, in bytes.</summary>
    public long FileLength => CompactModelFile.LengthOf(Dim, NumUsers, NumItems, Precision, TrainPairs,
        CompactModelFile.IdBytes(_userIds), CompactModelFile.IdBytes(_itemIds));

    internal ReadOnlySpan<long> TrainOffsets => _trainOffsets;

    internal CompactModel(ModelBackbone backbone, int layers, VectorTable users, VectorTable items,
        string[] userIds, string[] itemIds, long[] trainOffsets, int[] trainItems, Func<string, Exception> error)
    {
        Backbone = backbone; Layers = layers; Users = users; Items = items;
        _userIds = userIds; _itemIds = itemIds; _trainOffsets = trainOffsets; _trainItems = trainItems;
        _userIndex = Index(userIds, "user", error);
        _itemIndex = Index(itemIds, "item", error);
        if (trainOffsets.Length != userIds.Length + 1 || trainOffsets[0] != 0 || trainOffsets[^1] != trainItems.Length)
            throw error("train item offsets do not cover the train items");
        for (int u = 0; u < userIds.Length; u++)
        {
            long a = trainOffsets[u], b = trainOffsets[u + 1];
            if (b < a) throw error($"train item offsets decrease at user {u}");
            for (long j = a; j < b; j++)
            {
                int i = trainItems[j];
                if ((uint)i >= (uint)itemIds.Length) throw error($"user {u} has train item {i} out of range");
                if (j > a && trainItems[j - 1] >= i) throw error($"user {u}'s train items are not strictly ascending");
            }
        }
    }

    /// <summary>Id to dense index; ids must be non-empty, without control characters, and unique.</summary>
    private static Dictionary<string, int> Index(string[] ids, string what, Func<string, Exception> error)
    {
        var index = new Dictionary<string, int>(ids.Length, StringComparer.Ordinal);
        for (int x = 0; x < ids.Length; x++)
        {
            string id = ids[x] ?? throw error($"{what} {x} has no id");
            if (id.Length == 0) throw error($"{what} {x} has an empty id");
            if (id.AsSpan().ContainsAnyInRange('\0', '\u001f') || id.Contains('\u007f'))
                throw error($"{what} id '{id}' holds a control character");
            if (!index.TryAdd(id, x)) throw error($"{what} id '{id}' appears twice");
        }
        return index;
    }

    /// <summary>
    /// Builds a model from row-major float32 final vectors ([users x dim] and [items x dim]), the id of each
    /// dense user and item, and each dense user's train items (dense indices, any order, duplicates dropped).
    /// </summary>
    public static CompactModel Create(ModelBackbone backbone, int layers, int dim,
        ReadOnlySpan<float> userVectors, ReadOnlySpan<float> itemVectors,
        IReadOnlyList<string> userIds, IReadOnlyList<string> itemIds,
        IReadOnlyList<IReadOnlyList<int>> trainItems, VectorPrecision precision)
    {
        if (!Enum.IsDefined(backbone)) throw new ArgumentOutOfRangeException(nameof(backbone));
        if (!Enum.IsDefined(precision)) throw new ArgumentOutOfRangeException(nameof(precision));
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), "dim must be positive");
        if (layers < 0) throw new ArgumentOutOfRangeException(nameof(layers), "layers must be 0 or more");
        int nu = userIds.Count, ni = itemIds.Count;
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
        return new CompactModel(backbone, layers, users, items, userIds.ToArray(), itemIds.ToArray(), offsets, flat.ToArray(),
            reason => new ArgumentException(reason));
    }

    /// <summary>Reads and checks a model file (format version 2, or 1 with integer ids); <see cref="CompactModelFormatException"/> says what is wrong with a bad one.</summary>
    public static CompactModel Load(string path) => CompactModelFile.Read(path);

    /// <summary>Writes the model file (the current format version) atomically: a temporary file beside it, then a rename.</summary>
    public void Save(string path) => CompactModelFile.Write(path, this);

    /// <summary>The dense index of a user id, or false when the model does not hold that user.</summary>
    public bool TryGetUser(string userId, out int index) => _userIndex.TryGetValue(userId, out index);

    /// <summary>The dense index of an item id, or false when the model does not hold that item.</summary>
    public bool TryGetItem(string itemId, out int index) => _itemIndex.TryGetValue(itemId, out index);

    /// <summary>A dense user's train items (dense indices, ascending).</summary>
    public ReadOnlySpan<int> TrainItems(int user)
    {
        if ((uint)user >= (uint)NumUsers) throw new ArgumentOutOfRangeException(nameof(user));
        long a = _trainOffsets[user], b = _trainOffsets[user + 1];
        return _trainItems.AsSpan((int)a, (int)(b - a));
    }

    /// <summary>A dense user's vector as float32 (dequantized for fp16 and int8).</summary>
    public void UserVector(int user, Span<float> destination) => Users.Decode(user, destination);

    /// <summary>A dense item's vector as float32 (dequantized for fp16 and int8).</summary>
    public void ItemVector(int item, Span<float> destination) => Items.Decode(item, destination);

    /// <summary>A one-line description: backbone, dimension, precision and the user, item and train pair counts.</summary>
    public override string ToString() =>
        $"{Backbone} d={Dim} {Precision}: {NumUsers} users, {NumItems} items, {TrainPairs} train pairs";
}
