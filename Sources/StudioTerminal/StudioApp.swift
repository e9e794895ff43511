import Dispatch
import Foundation
import CNcurses
import ImageIO
import StudioCore
import StudioRuntime

/// The studio's main loop on the main actor: poll keys (non-blocking), feed actions to the session, redraw at
/// most 30 times a second when something changed. Awaiting between polls lets the engine's events, which the
/// session receives on the main actor, run in between.
@MainActor
public enum StudioApp {
    public static func run(_ session: StudioSession) async throws(TerminalError) {
        let terminal = try Terminal(graphics: session.state.graphics)
        defer { terminal.close() }
        let reader = KeyReader(window: terminal.window)
        final class Flags { var dirty = true; var fullRepaint = false }
        let flags = Flags()
        session.onChange = { flags.dirty = true }
        var size = terminal.size
        session.send(.resize(columns: size.columns, rows: size.rows))
        let signals = [SIGINT, SIGTERM, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .main)
            source.setEventHandler { MainActor.assumeIsolated { session.send(.quit) } }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        var lastDraw = ContinuousClock.now - .seconds(1)
        while !session.state.shouldQuit {
            var input = reader.next()
            while true {
                switch input {
                case .none: break
                case .resize:
                    size = terminal.size
                    flags.fullRepaint = true
                    session.send(.resize(columns: size.columns, rows: size.rows))
                case let .key(key):
                    if let action = Bindings.action(for: key) { session.send(action) }
                }
                if case .none = input { break }
                if session.state.shouldQuit { break }
                input = reader.next()
            }
            let now = ContinuousClock.now
            if flags.dirty, now - lastDraw >= .milliseconds(33) {
                terminal.draw(render(session.state, columns: size.columns, rows: size.rows), theme: session.state.theme, forceFullRepaint: flags.fullRepaint,
                              images: pixelImages(session.state, size))
                (flags.dirty, flags.fullRepaint, lastDraw) = (false, false, now)
            }
            try? await Task.sleep(for: .milliseconds(8))
        }
        // Quitting: the reducer already asked to cancel; wait (bounded) for the engine to stop between blocks.
        terminal.draw(render(session.state, columns: size.columns, rows: size.rows), theme: session.state.theme, images: pixelImages(session.state, size))
        final class Done { var value = false }
        let done = Done()
        Task { await session.settle(); done.value = true }
        let deadline = ContinuousClock.now + .seconds(5)
        while !done.value, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// The pictures a pixel protocol draws and the cells reserved for each: the preview, in a browser the
    /// selected image, in the seed grid its thumbnails; none while the help overlay covers the pane or the
    /// terminal is too small for the layout.
    static func pixelImages(_ state: StudioState, _ size: (columns: Int, rows: Int)) -> [(RGBImage, Rect)] {
        let layout = Layout(columns: size.columns, rows: size.rows)
        guard state.graphics.isPixelProtocol, !state.showHelp, layout.fits else { return [] }
        if let browser = state.browser {
            guard let id = browser.current?.id, let image = browser.thumbnails[id] else { return [] }
            return [(image, BrowserLayout(columns: size.columns, rows: size.rows).image)]
        }
        if let grid = state.explore { return gridThumbnails(grid, layout).map { ($0.image, $0.area) } }
        guard let preview = state.paneImage else { return [] }
        return [(preview, layout.image)]
    }
}
