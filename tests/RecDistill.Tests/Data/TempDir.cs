using System.Text;
using RecDistill.Data;

namespace RecDistill.Tests.Data;

/// <summary>A scratch directory removed after the test.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("recdistill-data-").FullName;

    public string Write(string name, string text) => WriteBytes(name, Encoding.UTF8.GetBytes(text));

    public string WriteBytes(string name, byte[] bytes)
    {
        string p = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    public string Sub(string name) => Directory.CreateDirectory(System.IO.Path.Combine(Path, name)).FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class Expect
{
    /// <summary>Asserts a DataFormatException at <paramref name="line"/> whose reason contains <paramref name="reason"/>.</summary>
    public static DataFormatException Bad(Action read, long line, string reason)
    {
        var e = Assert.Throws<DataFormatException>(read);
        Assert.Equal(line, e.LineNumber);
        Assert.Contains(reason, e.Reason, StringComparison.OrdinalIgnoreCase);
        Assert.False(string.IsNullOrEmpty(e.FilePath));
        return e;
    }

    /// <summary>The (user, item) pairs of integer-id data, as numbers.</summary>
    public static (long, long)[] Pairs(RawDataset d) => d.Interactions.Select(r => (long.Parse(r.User), long.Parse(r.Item))).ToArray();

    public static (string, string)[] StringPairs(RawDataset d) => d.Interactions.Select(r => (r.User, r.Item)).ToArray();
}
