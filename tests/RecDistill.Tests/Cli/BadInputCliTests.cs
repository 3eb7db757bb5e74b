using RecDistill.Runs;
using RecDistill.Cli;

namespace RecDistill.Tests.Cli;

/// <summary>The bad inputs listed in docs/reliability.md: each is one clear error and exit code 2, never a crash.</summary>
public class BadInputCliTests
{
    [Theory]
    [InlineData("empty", "")]
    [InlineData("header-only", "user,item\n")]
    [InlineData("truncated-last-line", "1,2\n1,3\n2,")]
    [InlineData("wrong-column-count", "1,2\n1,3,4,5,6\n")]
    [InlineData("empty-id", "1,2\n\"\",3\n")]
    [InlineData("unclosed-quote", "1,2\n\"1,3\n4,5\n")]
    [InlineData("quote-in-unquoted-field", "1,2\n1,3\"\n")]
    [InlineData("text-after-closing-quote", "1,2\n\"1\"x,3\n")]
    [InlineData("line-break-in-id", "1,2\n\"1\n1\",3\n")]
    [InlineData("invalid-utf8", "1,2\n1,\xff\xfe\n")]
    [InlineData("nothing-left-after-k-core", "1,2\n1,3\n1,4\n2,5\n")]
    public void Bad_csv_files_exit_with_code_2(string name, string text)
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, name + ".csv");
        // Latin-1 keeps the \xff bytes of the invalid-UTF-8 case as single raw bytes.
        File.WriteAllBytes(path, System.Text.Encoding.Latin1.GetBytes(text));
        Assert.Equal(2, CliApp.Run(new[] { "stats", "--data", path }));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--data", path, "--epochs", "1", "--out", Path.Combine(dir, "run") }));
        // Not even resume.json: the run directory is made once the data has loaded.
        Assert.False(Directory.Exists(Path.Combine(dir, "run")));
    }

    [Fact]
    public void A_truncated_gzip_file_exits_with_code_2()
    {
        var dir = TestData.TempDir();
        var gz = new MemoryStream();
        using (var z = new System.IO.Compression.GZipStream(gz, System.IO.Compression.CompressionLevel.Fastest))
            z.Write(System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 600).Select(k => $"{k % 40},{k % 70}\n"))));
        var path = Path.Combine(dir, "trunc.csv.gz");
        File.WriteAllBytes(path, gz.ToArray()[..^20]);
        Assert.Equal(2, CliApp.Run(new[] { "stats", "--data", path }));
    }

    [Fact]
    public void A_libtorch_that_cannot_be_loaded_is_explained_in_one_line_for_this_build()
    {
        // This build carries libtorch (-p:LibTorch=cpu, the default): the advice is to rebuild, and
        // only the first line of TorchSharp's long message is kept.
        var message = ComputeOptions.LibTorchNotLoaded(new NotSupportedException("no libtorch here\nStep 1 - trace ..."));
        Assert.Contains("(no libtorch here)", message);
        Assert.Contains("libtorch-cpu-linux-x64", message);
        Assert.DoesNotContain("Step 1", message);
        Assert.DoesNotContain("LD_LIBRARY_PATH", message);
    }

    [Fact]
    public void Device_cuda_without_a_cuda_libtorch_exits_with_code_2_and_writes_nothing()
    {
        if (TorchSharp.torch.cuda.is_available()) return; // a CUDA build of libtorch on a GPU machine
        var dir = Path.Combine(TestData.TempDir(), "run");
        Assert.Equal(2, CliApp.Run(new[] { "train", "--device", "cuda", "--epochs", "1", "--out", dir }));
        Assert.False(Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any());
    }

    [Fact]
    public void Bom_and_crlf_are_read_and_a_split_without_validation_is_refused()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "bom.csv");
        File.WriteAllBytes(path, new byte[] { 0xEF, 0xBB, 0xBF }.Concat("user,item\r\n1,2\r\n1,3\r\n2,5\r\n"u8.ToArray()).ToArray());
        Assert.Equal(0, CliApp.Run(new[] { "stats", "--data", path, "--min-user", "1" }));
        // Every user has fewer than 6 interactions: the 0.8/0.1/0.1 split leaves validation empty.
        Assert.Equal(2, CliApp.Run(new[] { "train", "--data", path, "--min-user", "1", "--epochs", "1", "--out", Path.Combine(dir, "run") }));
        // Not even resume.json: the run directory is made once the data has loaded.
        Assert.False(Directory.Exists(Path.Combine(dir, "run")));
    }

    [Fact]
    public void Corrupt_model_files_and_missing_runs_exit_with_code_2()
    {
        var dir = TestData.TempDir();
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--synthetic-users", "80", "--synthetic-items", "100", "--dim", "4", "--epochs", "2", "--threads", "1", "--out", run }));
        var model = Path.Combine(run, "model.bin");
        var bytes = File.ReadAllBytes(model);
        bytes[100] ^= 0xFF;
        File.WriteAllBytes(model, bytes);
        Assert.Equal(2, CliApp.Run(new[] { "evaluate", "--model", run }));
        Assert.Equal(2, CliApp.Run(new[] { "export", "--model", run, "--out", Path.Combine(dir, "m.rdm") }));
        Assert.False(File.Exists(Path.Combine(dir, "m.rdm")));
        Assert.Equal(2, CliApp.Run(new[] { "evaluate", "--model", Path.Combine(dir, "nowhere") }));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", Path.Combine(dir, "nowhere") }));
    }
}
