using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace PodBridge.Cri;

/// <summary>
/// The sandbox ("pause") image, built here because nothing can be pulled: a one-layer OCI image holding Debian's
/// static busybox, whose entrypoint sleeps forever as the sandbox's PID 1 (holding the namespaces is its only job).
/// containerd stops a sandbox with SIGKILL, so no signal handling is needed. Written as an OCI image layout
/// archive, the format `ctr images import` reads.
/// </summary>
public static class PauseImage
{
    public const string BusyboxPath = "/bin/busybox";

    private const UnixFileMode Regular = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode Executable = Regular | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Writes the archive to <paramref name="archivePath"/>; the image is named <paramref name="reference"/> (name:tag).</summary>
    public static void WriteArchive(string archivePath, string reference)
    {
        if (!File.Exists(BusyboxPath))
            throw new FileNotFoundException($"{BusyboxPath} is missing; install busybox-static (test.sh does)", BusyboxPath);

        var layer = BuildLayer();
        var layerDigest = Sha256(layer);
        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject
            {
                ["Entrypoint"] = new JsonArray("/bin/busybox", "sleep", "2147483647"),
                ["WorkingDir"] = "/",
            },
            // The uncompressed layer is its own diff: same digest.
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(layerDigest) },
        }.ToJsonString());
        var configDigest = Sha256(config);
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", configDigest, config.Length),
            ["layers"] = new JsonArray(Descriptor("application/vnd.oci.image.layer.v1.tar", layerDigest, layer.Length)),
        }.ToJsonString());
        var manifestDigest = Sha256(manifest);
        var tag = reference[(reference.LastIndexOf(':') + 1)..];
        var manifestRef = Descriptor("application/vnd.oci.image.manifest.v1+json", manifestDigest, manifest.Length);
        manifestRef["annotations"] = new JsonObject
        {
            // containerd names the imported image after this annotation; the OCI one carries the tag alone.
            ["io.containerd.image.name"] = reference,
            ["org.opencontainers.image.ref.name"] = tag,
        };
        var index = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new JsonArray(manifestRef),
        }.ToJsonString());

        using var file = File.Create(archivePath);
        using var tar = new TarWriter(file, TarEntryFormat.Pax);
        Add(tar, "oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray());
        Add(tar, "index.json", index);
        Add(tar, Blob(layerDigest), layer);
        Add(tar, Blob(configDigest), config);
        Add(tar, Blob(manifestDigest), manifest);
    }

    private static byte[] BuildLayer()
    {
        using var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "bin/") { Mode = Executable });
            var busybox = new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox")
            {
                Mode = Executable,
                DataStream = File.OpenRead(BusyboxPath),
            };
            tar.WriteEntry(busybox);
            busybox.DataStream.Dispose();
        }
        return ms.ToArray();
    }

    private static JsonObject Descriptor(string mediaType, string digest, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = digest, ["size"] = size };

    private static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static string Blob(string digest) => "blobs/sha256/" + digest["sha256:".Length..];

    private static void Add(TarWriter tar, string name, byte[] data) =>
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = Regular,
            DataStream = new MemoryStream(data),
        });
}
