namespace RecDistill.Data;

/// <summary>
/// The one rule that orders ids for dense re-indexing: ids made only of the digits 0-9 come first, in
/// ascending numeric value (any length; "7" before "07" before "007" when the values tie), then every other
/// id in ordinal (UTF-16 code unit) order. So all-integer data keeps ascending numeric order, and
/// zero-padded ids such as "U00017" keep the order of their numbers.
/// </summary>
public sealed class IdOrder : IComparer<string>
{
    /// <summary>The one instance (the order has no settings).</summary>
    public static readonly IdOrder Instance = new();

    private IdOrder() { }

    /// <summary>Compares two ids by the rule above; null sorts first.</summary>
    public int Compare(string? a, string? b)
    {
        if (ReferenceEquals(a, b)) return 0;
        if (a is null) return -1;
        if (b is null) return 1;
        bool an = IsDigits(a), bn = IsDigits(b);
        if (an != bn) return an ? -1 : 1;
        if (!an) return string.CompareOrdinal(a, b);
        var x = a.AsSpan().TrimStart('0');
        var y = b.AsSpan().TrimStart('0');
        if (x.Length != y.Length) return x.Length.CompareTo(y.Length);
        int c = x.SequenceCompareTo(y);
        return c != 0 ? c : a.Length.CompareTo(b.Length);
    }

    /// <summary>Whether an id is a plain non-negative integer: one or more ASCII digits and nothing else.</summary>
    public static bool IsDigits(ReadOnlySpan<char> id) => !id.IsEmpty && !id.ContainsAnyExceptInRange('0', '9');
}

/// <summary>
/// One string instance per distinct id while a file is read: a repeated id costs a lookup by span,
/// not an allocation, and later steps hash and compare the same few strings. Small integer ids (the
/// common case) are found by their value in an array, which keeps integer files close to the speed
/// of parsing numbers (bench/csv-load.cs).
/// </summary>
internal sealed class IdPool
{
    private const int MaxArrayId = 1 << 22;
    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _bySpan;
    private string?[] _byValue = new string?[1024];

    public IdPool() => _bySpan = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

    public string Get(ReadOnlySpan<char> id)
    {
        // Canonical digits only ("0", "17", not "017"), so that the value names one text.
        if (id.Length is > 0 and <= 7 && (id[0] != '0' || id.Length == 1) && IdOrder.IsDigits(id))
        {
            int value = int.Parse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);
            if (value < MaxArrayId)
            {
                if (value >= _byValue.Length) Array.Resize(ref _byValue, Math.Min(MaxArrayId, Math.Max(value + 1, 2 * _byValue.Length)));
                return _byValue[value] ??= Lookup(id);
            }
        }
        return Lookup(id);
    }

    private string Lookup(ReadOnlySpan<char> id)
    {
        if (_bySpan.TryGetValue(id, out var s)) return s;
        s = id.ToString();
        _ids.Add(s, s);
        return s;
    }

    public string Get(string id)
    {
        if (_ids.TryGetValue(id, out var s)) return s;
        _ids.Add(id, id);
        return id;
    }
}
