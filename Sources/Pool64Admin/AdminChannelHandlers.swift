import NIOCore
import NIOHTTP1

/// Closes a connection when `IdleStateHandler` reports it idle: a silent client must not hold a socket forever.
///
/// A client whose request has been read is waiting for us, not idle: a `POST /admin/pause` can wait a minute for
/// transactions to end, and closing under it would hide the answer. Sits after the HTTP codec (whose pipelining
/// handler delivers one request at a time), so "request read, response not ended" is one flag.
final class IdleCloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var awaitingResponse = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = self.unwrapInboundIn(data) { self.awaitingResponse = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.awaitingResponse = false }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // IdleStateHandler fires again after another idle period, so a client silent after its answer still goes.
        if !self.awaitingResponse { context.close(promise: nil) }
    }
}

/// Answers HTTP parse errors before the decoder closes the connection: 431 when the request head exceeds the
/// configured limits, 400 for anything else. Mirrors NIO's `HTTPServerProtocolErrorHandler`, which knows only 400.
final class AdminHTTPErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInFlight = false

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // Only a response that has not started can be replaced; otherwise the close alone has to tell the client.
        if !self.responseInFlight {
            let status: HTTPResponseStatus =
                parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            let headers = HTTPHeaders([("Connection", "close"), ("Content-Length", "0")])
            context.write(
                self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: self.responseInFlight = true
        case .head, .body: break
        case .end: self.responseInFlight = false
        }
        context.write(data, promise: promise)
    }
}
