// Load throughput of the data readers on Gowalla-size files (1,027,370 interactions): rows per second
// of DatasetReaders.ReadDelimited (and ReadLightgcn on Gowalla's own train.txt), median of --runs after a warm-up.
// --make DIR first writes the files from Gowalla (--gowalla DIR, default ../shared/data/gowalla): ints.csv
// (user,item with a header; Sep), ints.txt (the same pairs separated by a space: the hand-written line splitter),
// strings.csv (quoted "U00017","I000123" ids, CRLF, BOM, quoted header), strings.csv.gz, and wide.csv
// (user_id,title,item_id,rating with a quoted title holding a comma; read with --columns user_id,item_id,rating).
// The same file compiles against older builds (those without string ids fail on the string files and say so).
// Usage: dotnet run -c Release bench/csv-load.cs -- --make /tmp/csvload [--gowalla DIR] [--runs 5] [--json out.json] [--label NAME]
#:project ../src/RecDistill/RecDistill.csproj
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using RecDistill.Data;

string? dir = null, json = null, label = "this build", gowalla = "../shared/data/gowalla";
int runs = 5;
for (int a = 0; a < args.Length; a++)
{
    if (args[a] == "--make") dir = args[++a];
    else if (args[a] == "--runs") runs = int.Parse(args[++a], CultureInfo.InvariantCulture);
    else if (args[a] == "--json") json = args[++a];
    else if (args[a] == "--label") label = args[++a];
    else if (args[a] == "--gowalla") gowalla = args[++a];
}
if (dir is null) { Console.Error.WriteLine("usage: csv-load.cs -- --make DIR [--runs N] [--json FILE] [--label NAME]"); return 2; }
Directory.CreateDirectory(dir);
if (!File.Exists(Path.Combine(dir, "wide.csv"))) Make(gowalla, dir);

var results = new List<(string Name, long Rows, double Seconds, double CpuSeconds)>();
void Measure(string name, Func<int> read)
{
    try
    {
        read(); // warm-up: JIT, file cache
        var times = new List<double>();
        var cpu = new List<double>();
        int rows = 0;
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < runs; r++)
        {
            GC.Collect();
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            rows = read();
            times.Add(sw.Elapsed.TotalSeconds);
            process.Refresh();
            cpu.Add((process.TotalProcessorTime - cpu0).TotalSeconds);
        }
        times.Sort();
        cpu.Sort();
        // On a shared machine the wall time includes waiting for a core; the process's CPU time does not.
        double median = times[times.Count / 2], cpuMedian = cpu[cpu.Count / 2];
        results.Add((name, rows, median, cpuMedian));
        Console.WriteLine(FormattableString.Invariant($"{name,-44} {rows,10:N0} rows  wall {median * 1000,6:F0} ms {rows / median,12:N0} rows/s  cpu {cpuMedian * 1000,6:F0} ms {rows / cpuMedian,12:N0} rows/s"));
    }
    catch (Exception e)
    {
        Console.WriteLine($"{name,-44} fails: {e.Message.Split('\n')[0]}");
    }
}
Measure("ints.csv (user,item)", () => DatasetReaders.ReadDelimited(Path.Combine(dir, "ints.csv")).Interactions.Count);
Measure("ints.txt (user item, space-separated)", () => DatasetReaders.ReadDelimited(Path.Combine(dir, "ints.txt")).Interactions.Count);
Measure("strings.csv (quoted string ids, CRLF, BOM)", () => DatasetReaders.ReadDelimited(Path.Combine(dir, "strings.csv")).Interactions.Count);
Measure("strings.csv.gz", () => DatasetReaders.ReadDelimited(Path.Combine(dir, "strings.csv.gz")).Interactions.Count);
Measure("wide.csv (4 columns, quoted text)", () => ReadWide(Path.Combine(dir, "wide.csv")));
Measure("gowalla train.txt (lightgcn lines)", () => DatasetReaders.ReadLightgcn(Path.Combine(gowalla, "train.txt")).Interactions.Count);
if (json is not null)
{
    var sb = new StringBuilder("{\n");
    sb.Append(CultureInfo.InvariantCulture, $"  \"label\": \"{label}\",\n  \"runs\": {runs},\n  \"processor_count\": {Environment.ProcessorCount},\n  \"dotnet\": \"{Environment.Version}\",\n  \"files\": [\n");
    sb.Append(string.Join(",\n", results.Select(r => FormattableString.Invariant(
        $"    {{ \"file\": \"{r.Name}\", \"rows\": {r.Rows}, \"median_wall_seconds\": {r.Seconds:F4}, \"rows_per_wall_second\": {r.Rows / r.Seconds:F0}, \"median_cpu_seconds\": {r.CpuSeconds:F4}, \"rows_per_cpu_second\": {r.Rows / r.CpuSeconds:F0} }}"))));
    sb.Append("\n  ]\n}\n");
    File.WriteAllText(json, sb.ToString());
}
return 0;

// Builds that know --columns read the three chosen columns; older ones cannot read this file at all.
static int ReadWide(string path)
{
    var method = typeof(DatasetReaders).GetMethod("ReadDelimited")!;
    if (method.GetParameters().Length < 4) throw new NotSupportedException("this build has no column choice");
    var raw = (RawDataset)method.Invoke(null, [path, null, null, new[] { "user_id", "item_id", "rating" }])!;
    return raw.Interactions.Count;
}

static void Make(string gowalla, string dir)
{
    var pairs = new List<(int User, int Item)>();
    foreach (var part in new[] { "train.txt", "valid.txt", "test.txt" })
        foreach (var line in File.ReadLines(Path.Combine(gowalla, part)))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (int k = 1; k < f.Length; k++) pairs.Add((int.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[k], CultureInfo.InvariantCulture)));
        }
    var ints = new StringBuilder("user,item\n");
    var strings = new StringBuilder("\uFEFF\"user_id\",\"item_id\"\r\n");
    var wide = new StringBuilder("user_id,title,item_id,rating\n");
    foreach (var (u, i) in pairs)
    {
        ints.Append(CultureInfo.InvariantCulture, $"{u},{i}\n");
        strings.Append(CultureInfo.InvariantCulture, $"\"U{u:D5}\",\"I{i:D6}\"\r\n");
        wide.Append(CultureInfo.InvariantCulture, $"U{u:D5},\"Place {i}, \"\"Gowalla\"\"\",I{i:D6},{1 + (u + i) % 5}\n");
    }
    File.WriteAllText(Path.Combine(dir, "ints.csv"), ints.ToString());
    File.WriteAllText(Path.Combine(dir, "ints.txt"), ints.ToString()[10..].Replace(',', ' '));
    File.WriteAllText(Path.Combine(dir, "strings.csv"), strings.ToString());
    using (var f = File.Create(Path.Combine(dir, "strings.csv.gz")))
    using (var z = new GZipStream(f, CompressionLevel.Optimal))
        z.Write(Encoding.UTF8.GetBytes(strings.ToString()));
    File.WriteAllText(Path.Combine(dir, "wide.csv"), wide.ToString());
}
