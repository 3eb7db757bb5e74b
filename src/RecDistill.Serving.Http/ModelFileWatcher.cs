using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace RecDistill.Serving.Http;

/// <summary>
/// Reloads the model when its file changes: a watcher on the file's folder (inotify on Linux) sees the
/// file written, created or renamed into place, and once the file has been quiet for
/// <see cref="ServingOptions.ReloadDelay"/> the store loads it beside the old model. With
/// <see cref="ServingOptions.StartWithoutModel"/> it also makes the first attempt when the service starts.
/// </summary>
internal sealed class ModelFileWatcher(ModelStore store, ServingOptions options, ILogger<ModelFileWatcher> log)
    : IHostedService, IDisposable
{
    private FileSystemWatcher? _watcher;
    private Timer? _timer;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(options.ModelPath);
        if (options.WatchFile)
        {
            var dir = Path.GetDirectoryName(path)!;
            _timer = new Timer(_ => store.Reload("file changed"), null, Timeout.Infinite, Timeout.Infinite);
            if (Directory.Exists(dir))
            {
                _watcher = new FileSystemWatcher(dir)
                {
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                };
                void Poke(object? sender, FileSystemEventArgs e)
                {
                    if (string.Equals(e.FullPath, path, StringComparison.Ordinal)) _timer?.Change(options.ReloadDelay, Timeout.InfiniteTimeSpan);
                }
                _watcher.Changed += Poke;
                _watcher.Created += Poke;
                _watcher.Renamed += (s, e) => Poke(s, e);
                _watcher.Error += (_, e) => log.LogWarning(e.GetException(), "watching {Path} failed; POST /admin/reload still reloads", path);
                _watcher.EnableRaisingEvents = true;
                log.LogInformation("watching {Path} for a new model", path);
            }
            else
            {
                log.LogWarning("the folder of {Path} does not exist: not watching it; POST /admin/reload reloads", path);
            }
        }
        if (store.Current is null) _ = Task.Run(() => store.Reload("start"), cancellationToken);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _watcher = null;
        _timer?.Dispose();
        _timer = null;
    }
}
