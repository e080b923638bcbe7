import type { StatusLevel } from '../../server/quota/status.js';

/**
 * The web card's light palette (public/card.css). The image is one opaque light card with a
 * border and transparent rounded corners, so it reads the same on a light or a dark chat.
 */
export const CARD_COLORS = {
  background: '#ffffff',
  text: '#1f2328',
  muted: '#656d76',
  border: '#d0d7de',
  line: '#d8dee4',
  track: '#eaeef2',
} as const;

export const STATUS_COLORS: Record<StatusLevel, string> = {
  normal: '#1a7f37',
  warning: '#bf8700',
  critical: '#d1490f',
  exceeded: '#cf222e',
};
