import Logging
import NIOConcurrencyHelpers

/// The process-wide log level, changeable by SIGHUP: every handler reads it, so a reload takes effect on loggers
/// that libraries already copied.
final class LogLevelBox: Sendable {
    static let shared = LogLevelBox()
    private let box = NIOLockedValueBox(Logger.Level.info)
    var level: Logger.Level {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

/// Text or JSON lines on stderr with the shared, reloadable level.
struct ReloadableLogHandler: LogHandler {
    var inner: LogHandler
    var logLevel: Logger.Level {
        get { LogLevelBox.shared.level }
        set {}
    }
    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }
    func log(event: LogEvent) {
        guard event.level >= LogLevelBox.shared.level else { return }
        inner.log(event: event)
    }
}
