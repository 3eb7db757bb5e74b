// Whole-run A/B of each hand-written kernel: the same CLI run (same seed, same epochs, early stopping
// off) with every kernel (A) and with all kernels but one (B: --kernels plain:NAME), alternating
// A B A B ... so that both arms share the machine's state. The keep rule (issue 27): a kernel stays
// where A's median wall time is at least 15% below B's.
// Usage: dotnet run -c Release bench/kernel-ab.cs -- --teacher DIR [--data PATH --format F]
//          [--kernels list-scores,nkd-loss,...] [--epochs 20] [--repeats 2] [--threads 2]
//          [--cli src/RecDistill.Cli/bin/Release/net10.0/RecDistill.Cli.dll [--commit SHA]] [--out results/perf/kernel-ab]
// Writes OUT/NAME.json per kernel (every run's wall and train seconds, test NDCG@20 and model.bin's
// SHA-256, the medians, the ratio, the decision, the command lines, the commit) and prints a summary table.
#:property JsonSerializerIsReflectionEnabledByDefault=true
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

var opts = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal)) { Console.Error.WriteLine($"unexpected argument '{args[i]}'"); return 2; }
    opts[args[i][2..]] = args[i + 1];
}
if (args.Length % 2 != 0) { Console.Error.WriteLine($"option {args[^1]} needs a value"); return 2; }
string Opt(string name, string fallback) => opts.TryGetValue(name, out var v) ? v : fallback;
string cli = Opt("cli", "src/RecDistill.Cli/bin/Release/net10.0/RecDistill.Cli.dll");
string outDir = Opt("out", "results/perf/kernel-ab");
int epochs = int.Parse(Opt("epochs", "20"), CultureInfo.InvariantCulture);
int repeats = int.Parse(Opt("repeats", "2"), CultureInfo.InvariantCulture);
string threads = Opt("threads", "2");
if (!File.Exists(cli)) { Console.Error.WriteLine($"{cli} not found: build the CLI first (dotnet build src/RecDistill.Cli -c Release)"); return 2; }

// Each kernel's run: the method whose epoch it serves (or a LightGCN teacher for the propagation).
var runs = new Dictionary<string, string[]>
{
    ["sgemm"] = ["train", "--model", "bpr", "--dim", "200"],
    ["list-scores"] = ["distill", "--method", "sld"],
    ["nkd-loss"] = ["distill", "--method", "nkd"],
    ["htd-loss"] = ["distill", "--method", "htd"],
    ["graph-propagation"] = ["train", "--model", "lightgcn", "--dim", "64"],
};
var kernels = Opt("kernels", string.Join(",", runs.Keys)).Split(',', StringSplitOptions.RemoveEmptyEntries);
foreach (var k in kernels)
    if (!runs.ContainsKey(k)) { Console.Error.WriteLine($"unknown kernel '{k}': {string.Join(", ", runs.Keys)}"); return 2; }

// The commit the CLI was built from (default: this checkout's).
string commit = Opt("commit", Git("rev-parse --short HEAD"));
var scratch = Directory.CreateTempSubdirectory("kernel-ab-").FullName;
Directory.CreateDirectory(outDir);
Console.WriteLine($"kernel A/B: {epochs} epochs per run, {repeats} runs per arm, {threads} threads, commit {commit}");
Console.WriteLine("| kernel | run | A (all kernels) median s | B (without it) median s | A/B | decision |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var kernel in kernels)
{
    var run = runs[kernel];
    var common = new List<string>(run);
    if (run[0] == "distill")
    {
        if (!opts.TryGetValue("teacher", out var teacher)) { Console.Error.WriteLine("--teacher DIR is needed for the distillation kernels"); return 2; }
        common.AddRange(["--teacher", teacher]);
    }
    else
    {
        if (!opts.TryGetValue("data", out var data)) { Console.Error.WriteLine($"{kernel}: --data PATH is needed for the training runs"); continue; }
        common.AddRange(["--data", data, "--format", Opt("format", "citeulike")]);
    }
    common.AddRange(["--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--patience", "100000", "--seed", "1", "--threads", threads, "--overwrite"]);
    var arms = new Dictionary<string, List<(double Wall, double Train, double TestNdcg, string ModelSha)>> { ["A"] = new(), ["B"] = new() };
    var lines = new Dictionary<string, string>();
    for (int r = 0; r < repeats; r++)
        foreach (var arm in new[] { "A", "B" })
        {
            var dir = Path.Combine(scratch, $"{kernel}-{arm}");
            var argv = common.Concat(["--out", dir, "--kernels", arm == "A" ? "accelerated" : "plain:" + kernel]).ToList();
            lines[arm] = "dotnet " + cli + " " + string.Join(' ', argv);
            var clock = Stopwatch.StartNew();
            var p = Process.Start(new ProcessStartInfo("dotnet", new[] { cli }.Concat(argv)) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            double wall = clock.Elapsed.TotalSeconds;
            if (p.ExitCode != 0) { Console.Error.WriteLine($"{lines[arm]} failed ({p.ExitCode}): {stderr.Result}{stdout.Result}"); return 1; }
            var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!;
            // The metrics and model hash show whether leaving the kernel out changes the result (bit for bit or within noise).
            string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, "model.bin"))));
            arms[arm].Add((wall, (double)metrics["train_seconds"]!, (double)metrics["test"]!["ndcg@20"]!, sha));
        }
    double Median(IEnumerable<double> xs) { var s = xs.Order().ToArray(); return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2; }
    double a = Median(arms["A"].Select(x => x.Wall)), b = Median(arms["B"].Select(x => x.Wall));
    double ratio = a / b;
    string decision = ratio <= 0.85 ? "keep (A at least 15% shorter)" : "below the 15% rule";
    Console.WriteLine(FormattableString.Invariant($"| {kernel} | {string.Join(' ', run)} | {a:F1} | {b:F1} | {ratio:F3} | {decision} |"));
    var record = new JsonObject
    {
        ["kernel"] = kernel, ["commit"] = commit, ["epochs"] = epochs, ["repeats"] = repeats, ["threads"] = threads,
        ["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}",
        ["command_a"] = lines["A"], ["command_b"] = lines["B"],
        ["a_wall_seconds"] = new JsonArray(arms["A"].Select(x => (JsonNode)Math.Round(x.Wall, 2)).ToArray()),
        ["b_wall_seconds"] = new JsonArray(arms["B"].Select(x => (JsonNode)Math.Round(x.Wall, 2)).ToArray()),
        ["a_train_seconds"] = new JsonArray(arms["A"].Select(x => (JsonNode)x.Train).ToArray()),
        ["b_train_seconds"] = new JsonArray(arms["B"].Select(x => (JsonNode)x.Train).ToArray()),
        ["a_test_ndcg@20"] = new JsonArray(arms["A"].Select(x => (JsonNode)x.TestNdcg).ToArray()),
        ["b_test_ndcg@20"] = new JsonArray(arms["B"].Select(x => (JsonNode)x.TestNdcg).ToArray()),
        ["a_model_sha256"] = new JsonArray(arms["A"].Select(x => (JsonNode)x.ModelSha).ToArray()),
        ["b_model_sha256"] = new JsonArray(arms["B"].Select(x => (JsonNode)x.ModelSha).ToArray()),
        ["a_median_wall"] = Math.Round(a, 2), ["b_median_wall"] = Math.Round(b, 2), ["ratio_a_over_b"] = Math.Round(ratio, 4),
        ["decision"] = decision, ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
    };
    File.WriteAllText(Path.Combine(outDir, kernel + ".json"), record.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}
Directory.Delete(scratch, recursive: true);
return 0;

static string Git(string arguments)
{
    try
    {
        var p = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var s = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return p.ExitCode == 0 ? s : "unknown";
    }
    catch (System.ComponentModel.Win32Exception) { return "unknown"; }
}
