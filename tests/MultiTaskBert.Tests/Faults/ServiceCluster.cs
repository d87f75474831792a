using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Faults;

/// <summary>
/// Two real service processes (the built Api, each on its own copy of the fixture bundle) behind
/// nginx, all on 127.0.0.1. nginx runs with docker/nginx.conf where only the upstream addresses,
/// the listen address and file paths are replaced, so the retry/health settings under test are
/// the deployed ones. Every process is a child of the test and is killed on dispose (and at
/// process exit, should dispose not run).
/// </summary>
public sealed partial class ServiceCluster : IAsyncLifetime
{
    public const string AdminKey = "fault-test-key";
    public const string NginxPath = "/usr/sbin/nginx";

    /// <summary>Settings of the replicas (queue small enough to flood, no drain delay).</summary>
    public static readonly IReadOnlyDictionary<string, string> ReplicaSettings = new Dictionary<string, string>
    {
        ["Inference__Device"] = "cpu",
        ["Inference__IntraOpThreads"] = "1",
        ["Admin__ApiKey"] = AdminKey,
        ["Batching__QueueCapacity"] = "32",
        ["Limits__RequestTimeoutMs"] = "20000",
        ["Shutdown__DrainDelayMs"] = "0",
        ["Logging__Format"] = "json",
        ["Serilog__MinimumLevel__Default"] = "Warning",
        ["DOTNET_gcServer"] = "0",
    };

    private static readonly string[] TempPaths = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"];

    private readonly string _root = Path.Combine(Path.GetTempPath(), "mtbert-faults-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly List<Process> _all = [];
    private Process? _nginx;

    public Replica[] Replicas { get; private set; } = [];

    public int NginxPort { get; private set; }

    public Uri BaseAddress => new($"http://127.0.0.1:{NginxPort}");

    public string NginxConfig { get; private set; } = "";

    public async Task InitializeAsync()
    {
        if (!File.Exists(NginxPath))
        {
            throw new InvalidOperationException($"{NginxPath} not found: the fault tests need nginx (Debian: apt-get install nginx-light)");
        }

        Directory.CreateDirectory(_root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        Replicas = [new Replica(this, 1), new Replica(this, 2)];
        foreach (Replica replica in Replicas)
        {
            replica.CopyBundle();
            replica.Start();
        }

        await Task.WhenAll(Replicas.Select(r => r.WaitReadyAsync(TimeSpan.FromSeconds(90))));
        StartNginx();
        await WaitForAsync(async client => (await client.GetAsync(new Uri(BaseAddress, "/health/ready"))).IsSuccessStatusCode, TimeSpan.FromSeconds(20), "nginx");
    }

    /// <summary>One replica without nginx, for tests that talk to Kestrel itself (the hostile-input suite).</summary>
    public async Task<Replica> StartLoneReplicaAsync(IReadOnlyDictionary<string, string> settings)
    {
        Directory.CreateDirectory(_root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        var replica = new Replica(this, 1) { ExtraSettings = settings };
        Replicas = [replica];
        replica.CopyBundle();
        replica.Start();
        await replica.WaitReadyAsync(TimeSpan.FromSeconds(90));
        return replica;
    }

    /// <summary>
    /// A replica on a bundle folder that others may share (no nginx): <paramref name="bundleDirectory"/>
    /// null copies the fixture into a new folder. Started, not yet waited for.
    /// </summary>
    public Replica StartSharingReplica(int number, string? bundleDirectory, IReadOnlyDictionary<string, string> settings)
    {
        Directory.CreateDirectory(_root);
        if (Replicas.Length == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        }

        var replica = bundleDirectory is null
            ? new Replica(this, number) { ExtraSettings = settings }
            : new Replica(this, number) { ExtraSettings = settings, BundleDirectory = bundleDirectory };
        if (bundleDirectory is null)
        {
            replica.CopyBundle();
        }

        Replicas = [.. Replicas, replica];
        replica.Start();
        return replica;
    }

    /// <summary>docker/nginx.conf, pointed at the loopback replicas.</summary>
    public static string RenderNginxConfig(string template, int listenPort, IReadOnlyList<int> upstreamPorts, string prefix)
    {
        string config = template;
        for (int i = 0; i < upstreamPorts.Count; i++)
        {
            config = config.Replace($"server api{i + 1}:8080", $"server 127.0.0.1:{upstreamPorts[i]}", StringComparison.Ordinal);
        }

        config = ListenDirective().Replace(config, $"listen 127.0.0.1:{listenPort};");
        // Foreground single process (a child the test can kill), files under the test's folder.
        config = "daemon off;\nmaster_process off;\n" + $"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n" + config;
        string temp = string.Join("\n", TempPaths.Select(t => $"    {t}_temp_path {prefix}/{t};"));
        return config.Replace("http {", "http {\n" + temp, StringComparison.Ordinal);
    }

    public static string RepositoryFile(string relative)
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate) && Directory.Exists(Path.Combine(dir.FullName, "src")))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }

    private void StartNginx()
    {
        string prefix = Path.Combine(_root, "nginx");
        Directory.CreateDirectory(prefix);
        NginxPort = FreePort();
        NginxConfig = RenderNginxConfig(File.ReadAllText(RepositoryFile("docker/nginx.conf")), NginxPort, [.. Replicas.Select(r => r.Port)], prefix);
        string conf = Path.Combine(prefix, "nginx.conf");
        File.WriteAllText(conf, NginxConfig);
        _nginx = StartProcess(NginxPath, ["-c", conf, "-p", prefix, "-e", Path.Combine(prefix, "error.log")], prefix, new Dictionary<string, string>(), Path.Combine(prefix, "stdout.log"));
    }

    internal Process StartProcess(string file, IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string> env, string logPath)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach ((string key, string value) in env)
        {
            info.Environment[key] = value;
        }

        Process process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (_all)
        {
            _all.Add(process);
        }

        return process;
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.WriteLine(line);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task WaitForAsync(Func<HttpClient, Task<bool>> condition, TimeSpan timeout, string what)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (await condition(client))
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not up yet
            }
            catch (TaskCanceledException)
            {
                // slow
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"{what} not ready within {timeout}");
    }

    /// <summary>Resident memory of a process in bytes (Linux /proc).</summary>
    public static long ResidentBytes(Process process)
    {
        foreach (string line in File.ReadLines($"/proc/{process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    private void KillAll()
    {
        lock (_all)
        {
            foreach (Process process in _all)
            {
                try
                {
                    if (!process.HasExited)
                    {
                        process.Kill(entireProcessTree: true);
                        process.WaitForExit(5000);
                    }
                }
                catch (InvalidOperationException)
                {
                    // already gone
                }
            }
        }
    }

    public Task DisposeAsync()
    {
        KillAll();
        lock (_all)
        {
            _all.ForEach(p => p.Dispose());
            _all.Clear();
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }

        return Task.CompletedTask;
    }

    [GeneratedRegex(@"listen\s+80;")]
    private static partial Regex ListenDirective();

    /// <summary>One service process with its own bundle copy and port.</summary>
    public sealed class Replica(ServiceCluster cluster, int number)
    {
        public int Number { get; } = number;

        public int Port { get; private set; } = FreePort();

        /// <summary>Its own copy of the fixture bundle, or a folder it shares with other replicas (issue #28).</summary>
        public string BundleDirectory { get; init; } = Path.Combine(cluster._root, $"bundle{number}");

        public Process? Process { get; private set; }

        public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

        public bool IsRunning => Process is { HasExited: false };

        /// <summary>Settings on top of <see cref="ReplicaSettings"/>.</summary>
        public IReadOnlyDictionary<string, string> ExtraSettings { get; init; } = new Dictionary<string, string>();

        internal void CopyBundle()
        {
            foreach (string file in Directory.EnumerateFiles(TestBundle.Directory, "*", SearchOption.AllDirectories))
            {
                string target = Path.Combine(BundleDirectory, Path.GetRelativePath(TestBundle.Directory, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target, overwrite: true);
            }
        }

        public void Start()
        {
            string dll = ApiDll();
            var env = new Dictionary<string, string>(ReplicaSettings) { ["Model__BundlePath"] = BundleDirectory };
            foreach ((string key, string value) in ExtraSettings)
            {
                env[key] = value;
            }

            Process = cluster.StartProcess("dotnet", [dll, "--urls", $"http://127.0.0.1:{Port}"], Path.GetDirectoryName(dll)!, env,
                Path.Combine(cluster._root, $"replica{Number}.log"));
        }

        public Task WaitReadyAsync(TimeSpan timeout) =>
            WaitForAsync(async client => (await client.GetAsync(new Uri(BaseAddress, "/health/ready"))).IsSuccessStatusCode, timeout, $"replica {Number}");

        /// <summary>SIGKILL: no drain, connections reset mid-request.</summary>
        public void Kill()
        {
            Process?.Kill(entireProcessTree: true);
            Process?.WaitForExit(5000);
        }

        /// <summary>SIGTERM: graceful shutdown (readiness off, listener closed, in-flight requests finish).</summary>
        public void Terminate()
        {
            if (Process is null)
            {
                return;
            }

            using Process kill = System.Diagnostics.Process.Start("kill", ["-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
            if (!Process.WaitForExit(30_000))
            {
                Kill();
            }
        }

        public HttpClient AdminClient()
        {
            var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            client.DefaultRequestHeaders.Add("X-Api-Key", AdminKey);
            return client;
        }

        /// <summary>The built Api next to this test build (same configuration).</summary>
        private static string ApiDll()
        {
            string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name; // bin/<Configuration>/net10.0
            return RepositoryFile(Path.Combine("src", "MultiTaskBert.Api", "bin", configuration, "net10.0", "MultiTaskBert.Api.dll"));
        }
    }
}
