using System.Text.Json.Nodes;

namespace RecDistill.Runs;

/// <summary>Differences between recorded settings and wanted ones, as dotted keys (e.g. train.seed) with both values.</summary>
internal static class SettingsDiff
{
    /// <summary>
    /// The leaves of <paramref name="wanted"/> whose value differs in <paramref name="recorded"/>. With
    /// <paramref name="commonOnly"/>, keys the record lacks are not differences (a record written before a
    /// setting existed); without it they are, with the recorded value null.
    /// </summary>
    public static IReadOnlyList<(string Key, string? There, string? Here)> Of(JsonObject recorded, JsonObject wanted, bool commonOnly)
    {
        var was = Flat(recorded).ToDictionary(x => x.Key, x => x.Value);
        var result = new List<(string, string?, string?)>();
        foreach (var (key, value) in Flat(wanted))
        {
            bool present = was.TryGetValue(key, out var there);
            if (!present && commonOnly) continue;
            if (!present || there != value) result.Add((key, there, value));
        }
        return result;
    }

    /// <summary>One difference as text: the setting (named by <paramref name="name"/>), its recorded value, the wanted one.</summary>
    public static string Describe((string Key, string? There, string? Here) difference, Func<string, string>? name = null) =>
        $"{(name ?? (k => k))(difference.Key)} {difference.There ?? "(none)"} there, {difference.Here} here";

    private static IEnumerable<(string Key, string? Value)> Flat(JsonObject o, string prefix = "") =>
        o.SelectMany(kv => kv.Value is JsonObject inner
            ? Flat(inner, prefix + kv.Key + ".")
            : new[] { (prefix + kv.Key, kv.Value?.ToJsonString()) });
}
