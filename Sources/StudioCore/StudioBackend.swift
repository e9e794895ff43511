import ComfyUI
import RegularFiles
import SD3

/// A ComfyUI server the studio can render on: its address (with the token or header of its `[[backends]]` entry) and
/// the file names it renders with there. The local engine is not one of these: `StudioState.backend == nil` is it.
public struct StudioBackend: Sendable, Equatable {
    /// The entry's name, or HOST:PORT for a server given by address only.
    public var name: String
    public var address: ServerAddress
    /// Files on the server: the model in its checkpoints or diffusion_models, encoders in text_encoders, a VAE.
    public var model: String?
    public var clipL: String?
    public var clipG: String?
    public var t5: String?
    public var vae: String?

    public init(name: String, address: ServerAddress, model: String? = nil, clipL: String? = nil, clipG: String? = nil,
                t5: String? = nil, vae: String? = nil) {
        (self.name, self.address, self.model, self.clipL, self.clipG, self.t5, self.vae) = (name, address, model, clipL, clipG, t5, vae)
    }

    /// A configured entry, its url parsed and its token or header attached.
    public init(entry: ConfigFile.Backend) throws(RemoteError) {
        var address = try ServerAddress(parsing: entry.url)
        address.headers = entry.headers
        address.caFile = entry.caFile
        self.init(name: entry.name, address: address, model: entry.model, clipL: entry.clipL, clipG: entry.clipG, t5: entry.t5, vae: entry.vae)
    }

    /// Where the next image renders, as the header shows it and the PNG's `Backend` records it ("comfyui@HOST:PORT").
    public var label: String { "comfyui@\(address.name)" }

    /// The job with this server's file names; `useT5` false (the T5 field is off) leaves T5 out.
    public func job(_ job: ComfyUIJob, useT5: Bool) -> ComfyUIJob {
        var job = job
        job.model = model ?? ""
        (job.clipL, job.clipG, job.t5, job.vae) = (clipL, clipG, useT5 ? t5 : nil, vae)
        return job
    }
}

extension ConfigFile {
    /// The servers a `--backend` text names: comfyui:// or comfyuis:// addresses and `[[backends]]` names, separated by
    /// commas. An address that is also a configured entry's url takes that entry (its token, header and files).
    /// `otherChoices` are named in the error ("onednn, openblas, " for `sd3 generate`).
    public func servers(_ text: String, otherChoices: String = "") throws(RemoteError) -> [StudioBackend] {
        var servers: [StudioBackend] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part.contains("://") {
                let address = try ServerAddress(parsing: part)
                if let entry = backends.first(where: { (try? ServerAddress(parsing: $0.url)).map(Self.sameServer(address)) ?? false }) {
                    servers.append(try StudioBackend(entry: entry))
                } else {
                    servers.append(StudioBackend(name: address.name, address: address))
                }
            } else if let entry = backends.first(where: { $0.name == part }) {
                servers.append(try StudioBackend(entry: entry))
            } else {
                let known = backends.isEmpty ? "no [[backends]] in the config" : "configured: " + backends.map(\.name).joined(separator: ", ")
                throw RemoteError("--backend '\(part.oneLine)' is not \(otherChoices)comfyui://HOST:PORT or a configured backend (\(known))")
            }
        }
        return servers
    }

    /// The same scheme, host, port and prefix (headers and CA files are what an entry adds).
    static func sameServer(_ a: ServerAddress) -> (ServerAddress) -> Bool {
        { b in a.host == b.host && a.port == b.port && a.tls == b.tls && a.prefix == b.prefix }
    }

    /// Every `[[backends]]` entry, then the servers `--backend` adds that are not among them (by address).
    public func studioBackends(adding text: String?) throws(RemoteError) -> (all: [StudioBackend], chosen: Int?) {
        var all: [StudioBackend] = []
        for entry in backends { all.append(try StudioBackend(entry: entry)) }
        guard let text else { return (all, nil) }
        var chosen: Int?
        for server in try servers(text) {
            let index = all.firstIndex { $0.address == server.address } ?? {
                all.append(server)
                return all.count - 1
            }()
            if chosen == nil { chosen = index }
        }
        return (all, chosen)
    }
}

/// What the backend picker learnt of a server when it opened (`/system_stats` and `/queue`).
public enum BackendStatus: Sendable, Equatable {
    case checking
    case reachable(queue: Int, device: String)
    case unreachable(String)
}
