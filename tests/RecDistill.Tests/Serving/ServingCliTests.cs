using RecDistill.Runs;
using System.Globalization;
using RecDistill.Cli;
using RecDistill.Cli.Commands;
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Serving;
using RecDistill.Training;
using Spectre.Console;
using static RecDistill.Tests.Serving.ServingFixtures;
using static TorchSharp.torch;

namespace RecDistill.Tests.Serving;

public class ServingCliTests
{
    private static readonly string[] TinyData = { "--synthetic-users", "120", "--synthetic-items", "150" };

    /// <summary>Runs the CLI with its console output captured (Spectre output and plain standard output).</summary>
    internal static (int Code, string Output) Run(params string[] args)
    {
        var (code, output, _) = RunWithErrors(args);
        return (code, output);
    }

    /// <summary>As <see cref="Run"/>, with standard error apart.</summary>
    internal static (int Code, string Output, string Errors) RunWithErrors(params string[] args)
    {
        var writer = new StringWriter();
        var errors = new StringWriter();
        var oldAnsi = AnsiConsole.Console;
        var oldOut = Console.Out;
        var oldError = Console.Error;
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        AnsiConsole.Profile.Width = 200;
        Console.SetOut(writer);
        Console.SetError(errors);
        try
        {
            return (CliApp.Run(args), writer.ToString(), errors.ToString());
        }
        finally
        {
            AnsiConsole.Console = oldAnsi;
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    private static string TrainTiny(string root, string name, params string[] extra)
    {
        var dir = Path.Combine(root, name);
        var (code, output) = Run(new[] { "train", "--dim", "8", "--epochs", "2", "--eval-every", "1", "--lr", "0.01", "--batch-size", "256", "--threads", "1", "--out", dir }
            .Concat(extra).Concat(TinyData).ToArray());
        Assert.True(code == 0, output);
        return dir;
    }

    /// <summary>The recommend CSV of ids without commas or quotes (the tests' ids).</summary>
    internal static List<(string User, int Rank, string Item, float Score)> ParseCsv(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("user,rank,item,score", lines[0]);
        return lines.Skip(1).Select(l => l.Split(',')).Select(f => (f[0],
            int.Parse(f[1], CultureInfo.InvariantCulture), f[2], float.Parse(f[3], CultureInfo.InvariantCulture))).ToList();
    }

    [Fact]
    public void Export_then_recommend_gives_the_trained_models_ranking()
    {
        var root = TestData.TempDir();
        var run = TrainTiny(root, "bpr");
        var file = Path.Combine(root, "out", "model.rdm");
        var (code, output) = Run("export", "--model", run, "--out", file, "--threads", "1");
        Assert.True(code == 0, output);
        Assert.Contains("fp32", output);

        // The reference: the run's model, rebuilt as evaluate does, ranked by brute force.
        var data = DatasetLoader.Load(RunDirectory.ReadRecord(run).Data);
        using var model = ModelFile.Load(Path.Combine(run, ModelFile.FileName), data, CPU);
        var (uv, iv) = ModelExport.FinalVectors(model);
        var users = new[] { 0, 1, 5, data.NumUsers - 1 };
        var usersFile = Path.Combine(root, "users.txt");
        File.WriteAllText(usersFile, string.Join("\n", users.Select(u => data.UserIds[u])) + "\n\n");
        var csvPath = Path.Combine(root, "recs.csv");
        (code, output) = Run("recommend", "--model", file, "--users", usersFile, "--k", "7", "--out", csvPath);
        Assert.True(code == 0, output);
        var rows = ParseCsv(File.ReadAllText(csvPath));
        Assert.Equal(users.Length * 7, rows.Count);
        foreach (var u in users)
        {
            var want = BruteForce(uv, iv, 8, data, u, 7);
            var got = rows.Where(r => r.User == data.UserIds[u]).OrderBy(r => r.Rank).ToList();
            Assert.Equal(Enumerable.Range(1, 7), got.Select(r => r.Rank));
            Assert.Equal(want.Select(w => data.ItemIds[w.Item]), got.Select(r => r.Item));
            for (int r = 0; r < 7; r++) Assert.Equal(want[r].Score, got[r].Score, 1e-4);
        }

        // Without --out the CSV goes to standard output; --user prints a table.
        (code, output) = Run("recommend", "--model", file, "--users", usersFile, "--k", "7");
        Assert.Equal(0, code);
        Assert.Equal(rows, ParseCsv(output));
        (code, output) = Run("recommend", "--model", file, "--user", data.UserIds[1], "--k", "3");
        Assert.Equal(0, code);
        Assert.Contains("rank", output);
        Assert.Contains($" {rows.First(r => r.User == data.UserIds[1] && r.Rank == 1).Item} ", output);
    }

    [Fact]
    public void LightGcn_export_holds_the_propagated_vectors_and_int8_reports_its_cost()
    {
        var root = TestData.TempDir();
        var run = TrainTiny(root, "lgn", "--model", "lightgcn", "--layers", "2");
        var file = Path.Combine(root, "lgn.rdm");
        var (code, output) = Run("export", "--model", run, "--out", file, "--precision", "int8", "--threads", "1");
        Assert.True(code == 0, output);
        Assert.Contains("top-20 overlap vs fp32", output);
        Assert.Contains("test recall@20", output);
        var exported = CompactModel.Load(file);
        Assert.Equal(ModelBackbone.LightGcn, exported.Backbone);
        Assert.Equal(2, exported.Layers);
        Assert.Equal(VectorPrecision.Int8, exported.Precision);

        var data = DatasetLoader.Load(RunDirectory.ReadRecord(run).Data);
        using var model = ModelFile.Load(Path.Combine(run, ModelFile.FileName), data, CPU);
        var (uv, _) = ModelExport.FinalVectors(model);
        var raw = model.UserWeight.detach().cpu().data<float>().ToArray();
        var v = new float[8];
        double diffFinal = 0, diffRaw = 0;
        for (int u = 0; u < data.NumUsers; u++)
        {
            exported.UserVector(u, v);
            float maxAbs = 0;
            for (int c = 0; c < 8; c++) maxAbs = Math.Max(maxAbs, Math.Abs(uv[u * 8 + c]));
            for (int c = 0; c < 8; c++)
            {
                // Within int8 rounding of the propagated row: half a step of its scale, max |x| / 127.
                Assert.InRange(Math.Abs(v[c] - uv[u * 8 + c]), 0, maxAbs / 127 * 0.5001 + 1e-7);
                diffFinal = Math.Max(diffFinal, Math.Abs(v[c] - uv[u * 8 + c]));
                diffRaw = Math.Max(diffRaw, Math.Abs(v[c] - raw[u * 8 + c]));
            }
        }
        // And clearly not the raw table.
        Assert.True(diffRaw > 10 * diffFinal, $"raw {diffRaw} vs final {diffFinal}");
    }

    [Fact]
    public void Serving_mistakes_exit_non_zero_with_one_clear_line()
    {
        var root = TestData.TempDir();
        var data = TestData.Clustered();
        var file = Path.Combine(root, "m.rdm");
        using (var model = new BprMf(data.NumUsers, data.NumItems, 4))
            ModelExport.ToCompact(model, data, VectorPrecision.Fp32).Save(file);
        var users = Path.Combine(root, "users.txt");

        void Fails(string expected, params string[] args)
        {
            var (code, output, errors) = RunWithErrors(args);
            Assert.Equal(2, code);
            Assert.Contains(expected, errors); // on standard error, never inside the output
            Assert.DoesNotContain(expected, output);
            Assert.DoesNotContain("   at ", errors); // no stack trace
        }

        Fails("user '11' is not in the model", "recommend", "--model", file, "--user", "11");
        File.WriteAllText(users, "10\n20\n\"x7\n");
        Fails("users.txt:3: '\"x7' is not one quoted id", "recommend", "--model", file, "--users", users);
        File.WriteAllText(users, "10\n\n12345\n");
        Fails("users.txt:3: user '12345' is not in the model", "recommend", "--model", file, "--users", users, "--unknown", "error");
        Fails("--unknown 'never' is not one of skip, popular, error", "recommend", "--model", file, "--users", users, "--unknown", "never");
        Fails("--unknown needs --users", "recommend", "--model", file, "--user", "10", "--unknown", "popular");
        Fails("--items: item 'zz' is not in the model", "recommend", "--model", file, "--items", "0,zz");
        Fails("--items: an empty id", "recommend", "--model", file, "--items", "0,,10");
        Fails("give one of --user ID, --users FILE or --items A,B,C", "recommend", "--model", file, "--user", "10", "--items", "0");
        Fails("item 'zz' is not in the model", "similar", "--model", file, "--item", "zz");
        File.WriteAllText(users, "\n\n");
        Fails("no user ids", "recommend", "--model", file, "--users", users);
        Fails("no such file", "recommend", "--model", file, "--users", Path.Combine(root, "nope.txt"));
        Fails("no such model file", "recommend", "--model", Path.Combine(root, "nope.rdm"), "--user", "10");
        Fails("give one of --user ID, --users FILE or --items A,B,C", "recommend", "--model", file);
        Fails("--k must be at least 1", "recommend", "--model", file, "--user", "10", "--k", "0");
        Fails($"--out {root} is a directory: give the file to write", "recommend", "--model", file, "--user", "10", "--out", root);
        // evaluate: a directory, or a file of the run itself (its metrics.json would be replaced), is refused.
        var run = Path.Combine(root, "run");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--synthetic-users", "80", "--synthetic-items", "100", "--dim", "4", "--epochs", "1", "--threads", "1", "--out", run }));
        var metrics = File.ReadAllText(Path.Combine(run, "metrics.json"));
        Fails($"--out {root} is a directory", "evaluate", "--model", run, "--out", root);
        Fails("is a file of the run", "evaluate", "--model", run, "--out", Path.Combine(run, "metrics.json"));
        Assert.Equal(metrics, File.ReadAllText(Path.Combine(run, "metrics.json")));
        Fails("norun: no such run directory", "export", "--model", Path.Combine(root, "norun"), "--out", Path.Combine(root, "x.rdm"));
        Fails($"{root} is a directory: give the model file to write", "export", "--model", Path.Combine(root, "norun"), "--out", root);
        Fails("--urls: 'notaurl' is not a URL to listen on", "serve", "--model", file, "--urls", "notaurl");
        Fails("--precision 'int4'", "export", "--model", root, "--out", Path.Combine(root, "x.rdm"), "--precision", "int4");
        var bytes = File.ReadAllBytes(file);
        bytes[^20] ^= 1;
        File.WriteAllBytes(file, bytes);
        Fails("checksum mismatch", "recommend", "--model", file, "--user", "10");
        Assert.False(File.Exists(Path.Combine(root, "x.rdm")));
    }
}

public class NpyExportTests
{
    [Fact]
    public void Npy_files_hold_the_final_vectors_with_a_valid_header()
    {
        var dir = TestData.TempDir();
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--dim", "6", "--epochs", "2", "--eval-every", "1", "--synthetic-users", "120", "--synthetic-items", "150", "--out", run }));
        var npy = Path.Combine(dir, "npy");
        Assert.Equal(0, CliApp.Run(new[] { "export", "--model", run, "--format", "npy", "--out", npy }));
        Assert.Equal(2, CliApp.Run(new[] { "export", "--model", run, "--format", "npy", "--precision", "int8", "--out", npy }));

        var data = RecDistill.Data.DatasetLoader.Load(RunDirectory.ReadRecord(run).Data);
        using var model = ModelFile.Load(Path.Combine(run, ModelFile.FileName), data, TorchSharp.torch.CPU);
        var (users, items) = ModelExport.FinalVectors(model);
        foreach (var (file, rows, expected) in new[] { ("users.npy", data.NumUsers, users), ("items.npy", data.NumItems, items) })
        {
            var bytes = File.ReadAllBytes(Path.Combine(npy, file));
            Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 }, bytes[..8]);
            int headerLength = bytes[8] | bytes[9] << 8;
            Assert.Equal(0, (10 + headerLength) % 64);
            var header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
            Assert.Equal($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, 6), }}", header.TrimEnd(' ', '\n'));
            Assert.EndsWith("\n", header);
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan(10 + headerLength)).ToArray();
            Assert.Equal(expected, values);
        }
        Assert.Equal(data.UserIds, File.ReadAllLines(Path.Combine(npy, "user_ids.txt")));
        Assert.Equal(data.ItemIds, File.ReadAllLines(Path.Combine(npy, "item_ids.txt")));
    }
}
