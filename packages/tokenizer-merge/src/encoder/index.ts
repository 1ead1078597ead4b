export { SentencePieceEncoder, decodeBytesLikeSentencePiece } from './processor.js';
export { EncoderModelError, type EncoderModelProto } from './model.js';
